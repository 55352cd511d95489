// Hash routing: "#/account/ID?x=1" -> the screen registered for "/account/:id".
// A screen is `async (params, query) => ({title, el, live?, onData?, leave?})`. When local
// rows change (a pull, another tab's write) a `live` view is drawn again in place, keeping
// focus and scroll; `onData` lets a view update only its parts. Forms have neither, so a
// pull never wipes what the rep is typing. `leave()` is called, once, as soon as another
// screen is asked for: a form keeps its draft there, before the next screen reads drafts.

import { t } from "./i18n.js";
import { getMeta } from "./db.js";
import { on } from "./events.js";
import { session } from "./session.js";
import { focusedKey, h, restoreFocus } from "./ui.js";

const routes = [];
let main = null;
let current = null;
let generation = 0;
let dataTimer = null;

export function route(pattern, screen, { public: isPublic = false } = {}) {
  const keys = [];
  const source = pattern
    .split("/")
    .map((part) => {
      if (part.startsWith(":")) {
        keys.push(part.slice(1));
        return "([^/]+)";
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  routes.push({ regex: new RegExp(`^${source}$`), keys, screen, isPublic });
}

// A link the app does not know (an old bookmark, a typo): say so, and offer the way home.
const notFound = {
  isPublic: true,
  screen: async () => ({
    title: t("Page not found"),
    el: h("div", { class: "screen", testid: "not-found" }, h("h1", {}, t("Page not found")),
      h("p", { class: "empty" }, t("This link does not lead to a page of fieldcrm.")),
      h("a", { href: "#/today", class: "button-link primary", testid: "not-found-home" }, t("Go to Today"))),
  }),
};

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, "") || "/today";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

// Change the hash without rendering again (e.g. to remember a search).
export function replaceQuery(path, query) {
  const search = query.toString();
  history.replaceState(null, "", `#${path}${search ? `?${search}` : ""}`);
  document.body.dataset.route = location.hash;
}

function match(path) {
  for (const r of routes) {
    const m = r.regex.exec(path);
    if (!m) continue;
    const params = {};
    r.keys.forEach((key, i) => {
      params[key] = decodeURIComponent(m[i + 1]);
    });
    return { route: r, params };
  }
  return null;
}

export async function render({ keepFocus = false } = {}) {
  // This draw reads the rows a pending redraw was for (left, it redrew after a tap).
  if (dataTimer) clearTimeout(dataTimer);
  dataTimer = null;
  if (current && current.leave) {
    const leave = current.leave;
    current.leave = null;
    leave();
  }
  const { path, query } = parseHash();
  const found = match(path === "/" ? "/today" : path) || { route: notFound, params: {} };
  const signedIn = !!session().token;
  if (!found.route.isPublic && !signedIn) {
    navigate(session().user ? "#/login?expired=1" : "#/login");
    return;
  }
  if (path === "/login" && signedIn) {
    navigate("#/today");
    return;
  }
  const survivor = await survivorPath(path, found.params);
  if (survivor) {
    location.replace(`#${survivor}${query.toString() ? `?${query}` : ""}`);
    return;
  }
  const mine = ++generation;
  let view;
  try {
    view = await found.route.screen(found.params, query);
  } catch (err) {
    console.error("fieldcrm: screen failed", err);
    view = {
      title: t("Something went wrong"),
      el: h("p", { class: "empty", testid: "screen-error" }, String(err && err.message)),
    };
  }
  if (mine !== generation) return; // a newer navigation won
  current = view;
  const focus = keepFocus ? focusedKey(main) : null;
  const scroll = window.scrollY;
  main.replaceChildren(view.el);
  document.title = view.title ? `${view.title} · fieldcrm` : "fieldcrm";
  markNav(path);
  document.body.dataset.screen = found.route === notFound ? "not-found" : path.split("/")[1] || "today";
  document.body.dataset.route = location.hash; // the hash this screen was drawn for
  if (keepFocus) {
    restoreFocus(main, focus);
    window.scrollTo(0, scroll);
  } else {
    window.scrollTo(0, 0);
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }
}

// A record merged into another (SPEC 4 rule 13) is shown as its survivor: the path with
// each merged-away id replaced, or null when none is.
async function survivorPath(path, params) {
  const merged = (await getMeta("merged")) || {};
  let out = path;
  for (const value of Object.values(params)) {
    let id = value;
    for (let hops = 0; merged[id] && hops < 10; hops += 1) id = merged[id];
    if (id !== value) out = out.replace(value, id);
  }
  return out === path ? null : out;
}

function markNav(path) {
  const section = path.split("/")[1];
  const owner = { account: "accounts", visit: "accounts", note: "accounts", contact: "accounts",
    deal: "accounts", task: "tasks", drafts: "today", reassign: "accounts", campaign: "team", import: "team",
    duplicates: "team", merge: "team" }[section] || section;
  for (const a of document.querySelectorAll("nav.tabs a")) {
    if (a.getAttribute("href") === `#/${owner}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

export function startRouter(mainElement) {
  main = mainElement;
  window.addEventListener("hashchange", () => render());
  on("data", (d) => {
    if (d && d.merged && d.merged.some((id) => parseHash().path.includes(id))) {
      render(); // it shows a record merged away: show its survivor
      return;
    }
    if (!current || !(current.onData || current.live)) return;
    if (dataTimer) clearTimeout(dataTimer);
    dataTimer = setTimeout(() => {
      dataTimer = null;
      if (current && current.onData) current.onData();
      else if (current && current.live) render({ keepFocus: true });
    }, 150);
  });
  on("session", (s) => {
    if (!s || !s.token) render();
  });
  return render();
}
