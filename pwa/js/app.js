// Entry point: open the local database, restore the session, draw the current screen,
// then start syncing. Everything on screen comes from IndexedDB, so it all works offline.

import { lang, t, tn, translateShell } from "./i18n.js";
import { prefetchIndex } from "./account-index.js";
import { read, write } from "./db.js";
import { on } from "./events.js";
import { startInstall } from "./install.js";
import { startPush } from "./push.js";
import { pendingCount } from "./records.js";
import { route, startRouter } from "./router.js";
import { accountScreen } from "./screens/account.js";
import { conflictsScreen, unresolvedConflicts } from "./screens/conflicts.js";
import { draftsScreen } from "./screens/drafts.js";
import { loginScreen } from "./screens/login.js";
import { newNoteScreen } from "./screens/note.js";
import { settingsScreen } from "./screens/settings.js";
import { tasksScreen } from "./screens/tasks.js";
import { todayScreen } from "./screens/today.js";
import { newVisitScreen, visitScreen } from "./screens/visit.js";
import { loadSession, me, session } from "./session.js";
import { startBadge, syncText } from "./status.js";
import { controlled, startServiceWorker } from "./sw-update.js";
import { currentStatus, refreshStatus, startSync, syncNow } from "./sync.js";
import { isManager } from "./team.js";
import { h, toast } from "./ui.js";

// Screens most phones never open (a manager's, a record's history) load when first asked
// for: the service worker precaches them, so they still open offline, but the app starts
// without parsing them (docs/pwa.md, "Size").
function lazy(load, name) {
  return async (...args) => (await load())[name](...args);
}
const campaignModule = () => import("./screens/campaign.js");
const areaScreen = lazy(campaignModule, "areaScreen");
const campaignScreen = lazy(campaignModule, "campaignScreen");
const checkinsScreen = lazy(() => import("./screens/checkins.js"), "checkinsScreen");
const historyScreen = lazy(() => import("./screens/history.js"), "historyScreen");
const rejectedScreen = lazy(() => import("./screens/rejected.js"), "rejectedScreen");
const reassignScreen = lazy(() => import("./screens/reassign.js"), "reassignScreen");
const teamScreen = lazy(() => import("./screens/team.js"), "teamScreen");
const nearbyScreen = lazy(() => import("./screens/nearby.js"), "nearbyScreen");
// The forms of records (and the duplicate check the account form runs): opened from
// another screen, never the first one drawn.
const recordForm = (table) => async (...args) =>
  (await import("./screens/record-form.js")).recordForm(table)(...args);
// The accounts list: its search index (js/account-index.js) is part of the shell, for the
// task form's account picker.
const accountsScreen = lazy(() => import("./screens/accounts.js"), "accountsScreen");

route("/login", loginScreen, { public: true });
route("/today", todayScreen);
route("/accounts", accountsScreen);
route("/account/new", recordForm("accounts"));
route("/account/:id/edit", recordForm("accounts"));
route("/account/:id", accountScreen);
route("/visit/new", newVisitScreen);
route("/visit/:id/edit", recordForm("visits"));
route("/visit/:id", visitScreen);
route("/note/new", newNoteScreen);
route("/note/:id/edit", recordForm("notes"));
route("/contact/new", recordForm("contacts"));
route("/contact/:id/edit", recordForm("contacts"));
route("/deal/new", recordForm("deals"));
route("/deal/:id/edit", recordForm("deals"));
route("/task/new", recordForm("tasks"));
route("/task/:id/edit", recordForm("tasks"));
route("/tasks", tasksScreen);
route("/history/:table/:id", historyScreen);
route("/conflicts", conflictsScreen);
route("/rejected", rejectedScreen);
route("/drafts", draftsScreen);
route("/settings", settingsScreen);
route("/nearby", nearbyScreen);
route("/team", teamScreen);
route("/team/checkins", checkinsScreen);
route("/reassign", reassignScreen);
route("/campaign/new", areaScreen);
route("/campaign/:id", campaignScreen);
route("/import", onDemand("import", "importScreen"));

// A screen that needs the server anyway, loaded from js/online/ when it opens: not part of
// the app shell, so it costs no phone anything until used (docs/pwa.md).
function onDemand(name, exported) {
  return async (params, query) => {
    let module;
    try {
      module = await import(`./online/${name}.js`);
    } catch {
      return { title: t("Needs a connection"), el: h("div", { class: "screen" }, h("h1", {}, t("Needs a connection")),
        h("p", { class: "empty", testid: "screen-needs-connection" },
          t("This screen is fetched from the server when it opens: connect, then open it again."))) };
    }
    return module[exported](params, query);
  };
}
// Loaded when first opened, not with the shell (docs/pwa.md).
const merging = () => import("./screens/merge.js");
route("/duplicates", async (params, query) => (await merging()).duplicatesScreen(params, query));
route("/merge", async (params, query) => (await merging()).mergeScreen(params, query));

function showChrome(root) {
  const signedIn = !!session().token;
  const nav = root.querySelector("nav.tabs");
  nav.hidden = !signedIn;
  // The Team tab is for managers and admins; reps never see it.
  const manager = signedIn && isManager(me());
  root.querySelector("[data-testid=nav-team]").hidden = !manager;
  nav.classList.toggle("with-team", manager);
  root.querySelector("[data-testid=sync-now]").hidden = !signedIn;
  document.body.dataset.signedIn = signedIn ? "yes" : "no";
}

// "Sync now" always answers: busy while it runs, then what came of it in a toast, offline
// included (the badge alone would not change).
async function syncNowPressed(button) {
  if (button.getAttribute("aria-busy") === "true") return;
  button.setAttribute("aria-busy", "true");
  try {
    const status = await syncNow();
    if (status.state === "offline") {
      const kept = status.pending
        ? tn("{n} change waits on this phone until then.", "{n} changes wait on this phone until then.", status.pending)
        : t("Nothing waits to be sent.");
      toast(`${t("You are offline: syncing needs a connection.")} ${kept}`);
    } else if (status.state === "synced") {
      toast(t("Synced: this phone is up to date."));
    } else {
      toast(syncText(status, { long: true }));
    }
  } finally {
    button.removeAttribute("aria-busy");
  }
}

// The bottom bar wraps onto a second row with large text: the page and the banners keep
// clear of it whatever its height.
function trackNavHeight(root) {
  const nav = root.querySelector("nav.tabs");
  const set = () => {
    const inset = parseFloat(getComputedStyle(nav).paddingBottom) || 0;
    const height = nav.hidden ? 0 : nav.getBoundingClientRect().height - inset;
    if (height > 0) document.documentElement.style.setProperty("--nav-h", `${height}px`);
  };
  new ResizeObserver(set).observe(nav);
  set();
}

async function updateConflictCount(root) {
  const badge = root.querySelector("[data-testid=nav-conflicts-count]");
  const n = (await unresolvedConflicts()).length;
  badge.textContent = n ? String(n) : "";
  badge.dataset.count = String(n);
  badge.hidden = n === 0;
}

// A handle for end-to-end tests and for poking at the app from devtools.
function debugHandle() {
  return {
    syncNow: () => syncNow(),
    pendingCount: () => pendingCount(),
    status: () => currentStatus(),
    outbox: () => read(["outbox"], (s) => s.outbox.getAll()),
    meta: (key) => read(["meta"], (s) => s.meta.get(key)),
    rows: (table) => read([table], (s) => s[table].getAll()),
    drafts: () => read(["drafts"], (s) => s.drafts.getAll()),
    controlled: () => controlled(),
    ready: null,
  };
}

async function boot() {
  const root = document;
  translateShell(root);
  startBadge(root);
  const syncButton = root.querySelector("[data-testid=sync-now]");
  syncButton.addEventListener("click", () => syncNowPressed(syncButton));
  trackNavHeight(root);
  await loadSession();
  showChrome(root);
  on("session", () => showChrome(root));
  // The service worker words its reminders in the app's language (it cannot read
  // localStorage): kept in meta, again after a sign-in (sign-out empties meta).
  const keepLanguage = () => write(["meta"], (s) => s.meta.put(lang, "lang")).catch(() => {});
  keepLanguage();
  on("session", keepLanguage);
  on("data", () => updateConflictCount(root));
  updateConflictCount(root);
  startServiceWorker(root);
  startPush({ syncNow });
  if (session().token) prefetchIndex();
  await startRouter(root.querySelector("main"));
  await refreshStatus();
  startSync();
  document.body.dataset.ready = "yes";
}

// The browser may offer to install the app as soon as the page loads: listen first.
startInstall();
const handle = debugHandle();
window.fieldcrm = handle;
handle.ready = boot();
handle.ready.catch((err) => {
  console.error("fieldcrm failed to start", err);
  const main = document.querySelector("main");
  main.textContent = `${t("fieldcrm could not open its storage on this phone.")} ${String(err && err.message)}`;
});
