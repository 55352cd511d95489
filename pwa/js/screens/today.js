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
  const recent = visits
    .sort((a, b) => String(b.started_at).localeCompare(String(a.started_at)))
    .slice(0, RECENT_VISITS);
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
        ? h("ul", { class: "list" }, due.map((t) => taskRow(t, names.get(t.account_id), pending, users, { byAccount: true })))
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
