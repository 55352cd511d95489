// Entry point: open the local database, restore the session, draw the current screen,
// then start syncing. Everything on screen comes from IndexedDB, so it all works offline.

import { read } from "./db.js";
import { on } from "./events.js";
import { startPush } from "./push.js";
import { pendingCount } from "./records.js";
import { route, startRouter } from "./router.js";
import { accountScreen } from "./screens/account.js";
import { accountsScreen } from "./screens/accounts.js";
import { checkinsScreen } from "./screens/checkins.js";
import { conflictsScreen, unresolvedConflicts } from "./screens/conflicts.js";
import { draftsScreen } from "./screens/drafts.js";
import { historyScreen } from "./screens/history.js";
import { loginScreen } from "./screens/login.js";
import { nearbyScreen } from "./screens/nearby.js";
import { newNoteScreen } from "./screens/note.js";
import { reassignScreen } from "./screens/reassign.js";
import { recordForm } from "./screens/record-form.js";
import { rejectedScreen } from "./screens/rejected.js";
import { settingsScreen } from "./screens/settings.js";
import { tasksScreen } from "./screens/tasks.js";
import { teamScreen } from "./screens/team.js";
import { todayScreen } from "./screens/today.js";
import { newVisitScreen, visitScreen } from "./screens/visit.js";
import { loadSession, me, session } from "./session.js";
import { startBadge } from "./status.js";
import { controlled, startServiceWorker } from "./sw-update.js";
import { currentStatus, refreshStatus, startSync, syncNow } from "./sync.js";
import { isManager } from "./team.js";

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
  startBadge(root);
  root.querySelector("[data-testid=sync-now]").addEventListener("click", () => syncNow());
  await loadSession();
  showChrome(root);
  on("session", () => showChrome(root));
  on("data", () => updateConflictCount(root));
  updateConflictCount(root);
  startServiceWorker(root);
  startPush({ syncNow });
  await startRouter(root.querySelector("main"));
  await refreshStatus();
  startSync();
  document.body.dataset.ready = "yes";
}

const handle = debugHandle();
window.fieldcrm = handle;
handle.ready = boot();
handle.ready.catch((err) => {
  console.error("fieldcrm failed to start", err);
  const main = document.querySelector("main");
  main.textContent = "fieldcrm could not open its storage on this phone. " + String(err && err.message);
});
