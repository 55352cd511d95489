import { drawRows } from "../chunks.js";
import { accountNames, taskRow, visitRow } from "../components.js";
import { allDrafts } from "../drafts.js";
import { allRows, pendingKeys } from "../records.js";
import { me, userNames } from "../session.js";
import { empty, h, link, section } from "../ui.js";
import { draftsLine } from "./drafts.js";
import { dayStops, routeSection } from "./route-plan.js";
import { suggestionsSection } from "./suggestions.js";

const RECENT_VISITS = 5;

function endOfToday() {
  const d = new Date();
  d.setHours(23, 59, 59, 999);
  return d.getTime();
}

// Tasks for me (or nobody) that are due by tonight, earliest first.
function dueTasks(tasks, userId) {
  const limit = endOfToday();
  return tasks
    .filter((t) => !t.done && t.due_at && new Date(t.due_at).getTime() <= limit)
    .filter((t) => !t.assignee_id || t.assignee_id === userId)
    .sort((a, b) => a.due_at.localeCompare(b.due_at));
}

// The `n` latest visits, newest first, in one pass (a big territory holds tens of thousands).
function latest(visits, n) {
  const at = (v) => String(v.started_at);
  const top = [];
  for (const v of visits) {
    if (top.length === n && at(v) <= at(top[n - 1])) continue;
    let i = top.length;
    while (i > 0 && at(top[i - 1]) < at(v)) i -= 1;
    top.splice(i, 0, v);
    if (top.length > n) top.pop();
  }
  return top;
}

// A big territory can have thousands of tasks due: drawn as they scroll into view.
function dueList(due, row) {
  const list = h("ul", { class: "list" });
  drawRows(list, due, row, { first: 20 });
  return list;
}

export async function todayScreen() {
  const [tasks, visits, accounts, pending, drafts, users] = await Promise.all([
    allRows("tasks"),
    allRows("visits"),
    allRows("accounts"),
    pendingKeys(),
    allDrafts(),
    userNames(),
  ]);
  const user = me();
  const names = accountNames(accounts);
  const due = dueTasks(tasks, user && user.id);
  const byId = new Map(accounts.map((a) => [a.id, a]));
  const recent = latest(visits, RECENT_VISITS);
  const el = h(
    "div",
    { class: "screen" },
    h("h1", {}, "Today"),
    draftsLine(drafts),
    h(
      "div",
      { class: "actions" },
      link("Find an account", "#/accounts", "today-accounts", "button-link"),
      link("New task", "#/task/new", "today-new-task", "button-link"),
    ),
    section(
      `Due today (${due.length})`,
      "today-tasks",
      due.length
        ? dueList(due, (t) => taskRow(t, names.get(t.account_id), pending, users, { byAccount: true }))
        : empty("Nothing due today.", "today-tasks-empty"),
    ),
    routeSection(due, byId),
    suggestionsSection(accounts, dayStops(due, byId).stops, user && user.id),
    section(
      "Recent visits",
      "today-visits",
      recent.length
        ? h("ul", { class: "list" }, recent.map((v) => visitRow(v, names.get(v.account_id), pending, users)))
        : empty("No visits yet. Open an account to log one.", "today-visits-empty"),
    ),
  );
  return { title: "Today", el, live: true };
}
