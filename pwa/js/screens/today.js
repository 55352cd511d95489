import { drawRows } from "../chunks.js";
import { t } from "../i18n.js";
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
    .filter((task) => !task.done && task.due_at && new Date(task.due_at).getTime() <= limit)
    .filter((task) => !task.assignee_id || task.assignee_id === userId)
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
    h("h1", {}, t("Today")),
    draftsLine(drafts),
    h(
      "div",
      { class: "actions" },
      link(t("Find an account"), "#/accounts", "today-accounts", "button-link"),
      link(t("New task"), "#/task/new", "today-new-task", "button-link"),
    ),
    section(
      t("Due today ({count})", { count: due.length }),
      "today-tasks",
      due.length
        ? dueList(due, (task) => taskRow(task, names.get(task.account_id), pending, users, { byAccount: true }))
        : empty(t("Nothing due today."), "today-tasks-empty"),
    ),
    routeSection(due, byId),
    suggestionsSection(accounts, dayStops(due, byId).stops, user && user.id),
    section(
      t("Recent visits"),
      "today-visits",
      recent.length
        ? h("ul", { class: "list" }, recent.map((v) => visitRow(v, names.get(v.account_id), pending, users)))
        : empty(t("No visits yet. Open an account to log one."), "today-visits-empty"),
    ),
  );
  return { title: t("Today"), el, live: true };
}
