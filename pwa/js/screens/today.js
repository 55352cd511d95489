import { drawRows } from "../chunks.js";
import { t } from "../i18n.js";
import { taskRow, visitRow } from "../components.js";
import { allDrafts } from "../drafts.js";
import { keptRows, pendingKeys, rowsById } from "../records.js";
import { me, userNames } from "../session.js";
import { empty, h, link, section } from "../ui.js";
import { draftsLine } from "./drafts.js";
import { dayStops, routeSection } from "./route-plan.js";
import { suggestions, suggestionsSection } from "./suggestions.js";

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

// A big territory can have thousands of tasks due: drawn as they scroll into view. A
// phone's first screen holds two to five (a row is 100-180 px at 360 px wide): eight are
// drawn with it, the next ones once it is on screen (laying out 20 was a fifth of Today's
// time on a slow phone), a dozen at a time.
function dueList(due, row) {
  const list = h("ul", { class: "list" });
  drawRows(list, due, row, { first: 8, more: 12 });
  return list;
}

// What Today computed from the rows, kept while they are the same (js/records.js keptRows
// answers the same array until its store changes): a big territory's Today is 10,000
// accounts, 20,000 visits and thousands of tasks gone through on each open otherwise.
// `inputs`: the arrays and values it was computed from.
const computed = new Map();
function once(name, inputs, make) {
  const kept = computed.get(name);
  if (kept && kept.inputs.every((x, i) => x === inputs[i])) return kept.value;
  const value = make();
  computed.set(name, { inputs, value });
  return value;
}

export async function todayScreen() {
  const [tasks, visits, accounts, pending, drafts, users] = await Promise.all([
    keptRows("tasks"),
    keptRows("visits"),
    keptRows("accounts"),
    pendingKeys(),
    allDrafts(),
    userNames(),
  ]);
  const user = me();
  const userId = user && user.id;
  const byId = rowsById(accounts);
  const name = (id) => (byId.get(id) || {}).name;
  const due = once("due", [tasks, userId, endOfToday()], () => dueTasks(tasks, userId));
  const recent = once("recent", [visits], () => latest(visits, RECENT_VISITS));
  const day = once("day", [due, byId], () => dayStops(due, byId));
  // Suggestions are of accounts not visited for a month: an hour old is fresh enough.
  const found = once("suggestions", [accounts, day, userId, Math.floor(Date.now() / 3_600_000)],
    () => suggestions(accounts, day.stops, userId));
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
        ? dueList(due, (task) => taskRow(task, name(task.account_id), pending, users, { byAccount: true }))
        : empty(t("Nothing due today."), "today-tasks-empty"),
    ),
    routeSection(day),
    suggestionsSection(found),
    section(
      t("Recent visits"),
      "today-visits",
      recent.length
        ? h("ul", { class: "list" }, recent.map((v) => visitRow(v, name(v.account_id), pending, users)))
        : empty(t("No visits yet. Open an account to log one."), "today-visits-empty"),
    ),
  );
  return { title: t("Today"), el, live: true };
}
