// Campaigns (docs/campaigns.md), for managers. `#/campaign/new`: pick the team's accounts by
// an area drawn on the map with taps and by filters, then plan a visit for each owner over a
// period (POST /api/campaigns), or reassign them. Picking works offline, from the rows this
// phone holds, by the server's rule (which picks again when the campaign is made); planning
// needs a connection. `#/campaign/ID`: its progress and its accounts on the map, as the
// server last said (offline: with when). The Team screen lists the campaigns.

import { t, tn } from "../i18n.js";
import { apiFetch, errorDetail, NetworkError } from "../api.js";
import { drawArea, inArea } from "../area.js";
import { drawPoints, hasPosition, removeMap } from "../map.js";
import { allRows } from "../records.js";
import { navigate } from "../router.js";
import { me, refreshUsers, session, teamUsers, userNames } from "../session.js";
import { syncNow } from "../sync.js";
import { isManager, isoDate, keptGet } from "../team.js";
import { LABELS, empty, field, formatDate, formatDateTime, h, link, options, section, toast } from "../ui.js";

const T = {
  title: t("New campaign"),
  notManager: t("Campaigns are for managers."),
  intro: t("Draw an area on the map with taps and choose filters; then plan a visit to each account, or reassign them."),
  shapes: { rectangle: t("Rectangle"), polygon: t("Polygon") },
  hints: { rectangle: t("Tap two opposite corners."), polygon: t("Tap each corner; three or more make an area.") },
  undo: t("Undo"),
  clear: t("Clear"),
  any: t("Any"),
  days: (n) => tn("{n} day", "{n} days", n),
  picked: (n) => tn("{n} account picked", "{n} accounts picked", n),
  more: (n) => t("and {n} more", { n }),
  reassign: (n) => tn("Reassign this account", "Reassign these {n}", n),
  plan: t("Plan a visit to each, by its owner"),
  submit: (n) => tn("Plan {n} visit", "Plan {n} visits", n),
  spread: t("Spread over the period's working days (Monday to Friday), near ones on the same day."),
  offline: t("Offline: planning needs a connection. The area and filters stay here."),
  made: (n) => tn("{n} visit planned", "{n} visits planned", n),
  figures: { accounts: t("Accounts"), planned: t("Planned"), visited: t("Visited"), verified: t("Verified"), done: t("Done") },
  asOf: (at) => t("Offline: as the server said at {when}.", { when: at }),
  none: t("This phone has not fetched it yet; it needs a connection once."),
  legend: [["customer", t("Visited, verified")], ["prospect", t("Visited")], ["inactive", t("Not visited yet")]],
  skipped: (n) => t("{n} left out: no active owner in the team.", { n }),
  campaigns: t("Campaigns"),
  newOne: t("New campaign"),
  noCampaigns: t("No campaign yet."),
  line: (p) => t("{visited} of {accounts} visited · {verified} verified · {planned} planned", p),
};
const NOT_VISITED = [14, 30, 60, 90];
const SHOWN = 6;

const folded = (s) => String(s || "").trim().toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
const period = (c) => `${formatDate(c.from)} – ${formatDate(c.to)}`;

function progressLine(p) {
  return [h("progress", { max: String(p.accounts || 1), value: String(p.visited) }), h("span", { class: "row-sub block" }, T.line(p))];
}

// The Team screen's list of campaigns, drawn into `box`.
export async function campaignsSection(box) {
  const got = await keptGet("/api/campaigns");
  const list = got.data ? got.data.campaigns : [];
  box.replaceChildren(section(T.campaigns, "team-campaigns",
    link(T.newOne, "#/campaign/new", "campaign-new", "button-link"),
    got.source === "cache" ? h("p", { class: "notice" }, T.asOf(formatDateTime(new Date(got.fetched_at).toISOString()))) : null,
    list.length ? h("ul", { class: "list" }, list.map((c) => h("li", { class: "row", testid: "team-campaign",
      dataset: { id: c.id, visited: String(c.progress.visited), accounts: String(c.progress.accounts) } },
    h("a", { class: "row-main", href: `#/campaign/${c.id}` }, h("span", { class: "row-title" }, c.name),
      h("span", { class: "row-sub" }, period(c)), progressLine(c.progress)))))
      : empty(got.error && !got.data ? got.error : T.noCampaigns, "team-campaigns-empty")));
}

function pick(accounts, area, f, now) {
  return accounts.filter((a) => (!f.status || a.status === f.status) && (!f.owner_id || a.owner_id === f.owner_id)
    && (!f.city || folded(a.city) === folded(f.city))
    && (!f.not_visited_days || !a.last_visit_at || Date.parse(a.last_visit_at) < now - f.not_visited_days * 86_400_000)
    && (!area || inArea(area, a.lat, a.lng)));
}

export async function areaScreen(_params, query) {
  const heading = h("h1", {}, T.title);
  if (!isManager()) return { title: T.title, el: h("div", { class: "screen" }, heading, empty(T.notManager, "team-not-manager")) };
  refreshUsers().catch(() => {});
  const user = me();
  const [all, users] = await Promise.all([allRows("accounts"), teamUsers()]);
  const accounts = all.filter((a) => a.team_id === user.team_id).sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const team = users.filter((u) => u.team_id === user.team_id).sort((a, b) => a.username.localeCompare(b.username));
  const names = new Map(team.map((u) => [u.id, u.username]));
  const fields = {
    status: field({ name: "status", label: t("Status"), type: "select", testid: "campaign-status",
      options: options(LABELS.status, { blank: T.any }) }),
    city: field({ name: "city", label: t("City"), testid: "campaign-city", maxlength: 100 }),
    not_visited_days: field({ name: "not_visited_days", label: t("Not visited in"), type: "select", testid: "campaign-not-visited",
      options: [["", T.any], ...NOT_VISITED.map((n) => [String(n), T.days(n)])] }),
    owner_id: field({ name: "owner_id", label: t("Owner"), type: "select", testid: "campaign-owner",
      options: [["", T.any], ...team.map((u) => [u.id, u.username])] }),
  };
  const control = (f) => f.querySelector("input, select");
  const filters = () => {
    const f = {};
    for (const [k, block] of Object.entries(fields)) if (control(block).value.trim()) f[k] = control(block).value.trim();
    if (f.not_visited_days) f.not_visited_days = Number(f.not_visited_days);
    return f;
  };
  const today = new Date();
  const name = field({ name: "name", label: t("Campaign name"), testid: "campaign-name", maxlength: 200, required: true });
  const from = field({ name: "from", label: t("From"), type: "date", testid: "campaign-from", value: isoDate(today) });
  const to = field({ name: "to", label: t("To"), type: "date", testid: "campaign-to",
    value: isoDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() + 13)) });
  const count = h("p", { class: "count", testid: "campaign-count", "aria-live": "polite" });
  const listed = h("ul", { class: "list", testid: "campaign-picked" });
  const reassign = h("button", { type: "button", testid: "campaign-reassign" });
  const submit = h("button", { type: "submit", class: "primary", testid: "campaign-submit" });
  const error = h("p", { class: "error", role: "alert", testid: "campaign-error", hidden: true });
  const offline = h("p", { class: "notice", testid: "campaign-offline", hidden: true }, T.offline);
  const hint = h("p", { class: "hint", testid: "campaign-hint" }, T.hints.rectangle);
  const box = h("div", { class: "nearby-map", testid: "campaign-map", role: "region", "aria-label": T.intro });
  const note = h("p", { class: "hint", hidden: true });
  let area = null;
  let picked = [];
  let busy = false;
  let map = null;
  let marks = null;

  function update() {
    picked = pick(accounts, area, filters(), Date.now());
    count.textContent = T.picked(picked.length);
    count.dataset.count = String(picked.length);
    listed.replaceChildren(...picked.slice(0, SHOWN).map((a) => h("li", { class: "row", testid: "campaign-account", dataset: { id: a.id } },
      h("span", { class: "row-main" }, h("span", { class: "row-title" }, a.name),
        h("span", { class: "row-sub" }, [a.city, names.get(a.owner_id)].filter(Boolean).join(" · "))))),
    picked.length > SHOWN ? h("li", { class: "hint" }, T.more(picked.length - SHOWN)) : []);
    reassign.textContent = T.reassign(picked.length);
    reassign.disabled = !picked.length;
    submit.textContent = T.submit(picked.length);
    submit.disabled = busy || !picked.length || !navigator.onLine;
    offline.hidden = navigator.onLine;
    if (marks) {
      marks.clearLayers();
      for (const a of picked.filter(hasPosition)) globalThis.L.circleMarker([a.lat, a.lng], { radius: 11, className: "area-picked", interactive: false }).addTo(marks);
    }
  }

  const shapes = h("div", { class: "actions", role: "group", "aria-label": T.intro });
  let drawer = null;
  for (const [shape, label] of Object.entries(T.shapes)) {
    shapes.append(h("button", { type: "button", class: "small", testid: `campaign-shape-${shape}`, "aria-pressed": String(shape === "rectangle"),
      onclick: (e) => {
        for (const b of shapes.querySelectorAll("[aria-pressed]")) b.setAttribute("aria-pressed", String(b === e.target));
        hint.textContent = T.hints[shape];
        if (drawer) drawer.shape(shape);
      } }, label));
  }
  shapes.append(h("button", { type: "button", class: "small", testid: "campaign-undo", onclick: () => drawer && drawer.undo() }, T.undo),
    h("button", { type: "button", class: "small", testid: "campaign-clear", onclick: () => drawer && drawer.clear() }, T.clear));
  drawPoints(box, note, accounts.filter(hasPosition).map((a) => ({ lat: a.lat, lng: a.lng,
    className: `nearby-marker nearby-marker-${a.status || "prospect"}` })), null).then((m) => {
    map = m;
    if (!m) return;
    marks = globalThis.L.layerGroup().addTo(m);
    drawer = drawArea(globalThis.L, m, (a) => {
      area = a;
      update();
    });
    update();
  });

  reassign.addEventListener("click", () => navigate(`#/reassign?ids=${picked.map((a) => a.id).join(",")}`));
  const form = h("form", { class: "stack", testid: "campaign-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: control(name).value.trim(), from: control(from).value, to: control(to).value, area, filters: filters() };
    if (body.filters.status) body.filters.status = [body.filters.status];
    busy = true;
    update();
    let answer;
    try {
      answer = await apiFetch("/api/campaigns", { method: "POST", token: session().token, body });
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      answer = { status: 0, data: { detail: err.message } };
    }
    busy = false;
    update();
    error.hidden = answer.status === 201;
    error.textContent = errorDetail(answer, t("The campaign could not be planned."));
    if (answer.status !== 201) return;
    toast(T.made(answer.data.created));
    syncNow();
    navigate(`#/campaign/${answer.data.campaign.id}`);
  } }, name, from, to, h("p", { class: "hint" }, T.spread),
  error, offline, submit);
  for (const block of Object.values(fields)) control(block).addEventListener("input", update);
  const onNet = () => update();
  window.addEventListener("online", onNet);
  window.addEventListener("offline", onNet);
  update();
  const el = h("div", { class: "screen" }, heading, h("p", { class: "hint" }, T.intro), shapes, hint, box, note,
    h("div", { class: "area-filters" }, ...Object.values(fields)), count, listed, h("p", {}, reassign),
    section(T.plan, "campaign-plan", form));
  return {
    title: T.title, el,
    leave: () => {
      window.removeEventListener("online", onNet);
      window.removeEventListener("offline", onNet);
      removeMap(map);
    },
  };
}

export async function campaignScreen({ id }) {
  if (!isManager()) return { title: T.campaigns, el: h("div", { class: "screen" }, empty(T.notManager, "team-not-manager")) };
  const got = await keptGet(`/api/campaigns/${encodeURIComponent(id)}`);
  const d = got.data;
  if (!d) return { title: T.campaigns, el: h("div", { class: "screen" }, h("h1", {}, T.campaigns), empty(got.error || T.none, "campaign-missing")) };
  const c = d.campaign;
  const names = await userNames();
  const state = (a) => (a.verified ? "customer" : a.visited_at ? "prospect" : "inactive");
  const box = h("div", { class: "nearby-map", testid: "campaign-accounts-map", role: "region", "aria-label": c.name });
  const note = h("p", { class: "hint", hidden: true });
  const maps = {};
  const here = d.accounts.filter((a) => !a.gone);
  drawPoints(box, note, here.filter(hasPosition).map((a) => ({ lat: a.lat, lng: a.lng,
    className: `nearby-marker nearby-marker-${state(a)}`, popup: () => link(a.name, `#/account/${a.account_id}`, null, "row-title") })))
    .then((m) => { maps.m = m; });
  const el = h("div", { class: "screen" }, h("h1", {}, c.name),
    h("p", { class: "lead", testid: "campaign-period" }, period(c)),
    got.source === "cache" ? h("p", { class: "notice", testid: "campaign-source" }, T.asOf(formatDateTime(new Date(got.fetched_at).toISOString()))) : null,
    h("dl", { class: "figures", testid: "campaign-progress" }, Object.entries(T.figures).map(([k, label]) =>
      h("div", { class: "figure", testid: "campaign-figure", dataset: { figure: k, value: String(c.progress[k]) } },
        h("dt", {}, label), h("dd", {}, String(c.progress[k]))))),
    progressLine(c.progress),
    c.skipped ? h("p", { class: "hint" }, T.skipped(c.skipped)) : null,
    box, note,
    h("p", { class: "nearby-legend" }, T.legend.map(([k, label]) => h("span", {}, h("span", { class: `nearby-dot nearby-dot-${k}` }), label))),
    h("ul", { class: "list", testid: "campaign-accounts" }, here.map((a) => h("li", { class: "row", testid: "campaign-row",
      dataset: { id: a.account_id, state: state(a) } },
    h("a", { class: "row-main", href: `#/account/${a.account_id}` }, h("span", { class: "row-title" }, a.name),
      h("span", { class: "row-sub" }, [names.get(a.owner_id), a.visited_at ? t("Visited {date}", { date: formatDate(a.visited_at) })
        : a.due_at ? t("Due {when}", { when: formatDateTime(a.due_at) }) : null, a.verified ? LABELS.verification.verified : null].filter(Boolean).join(" · ")))))));
  return { title: c.name, el, leave: () => removeMap(maps.m) };
}
