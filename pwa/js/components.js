// Pieces shared by several screens.

import { t } from "./i18n.js";
import { saveWrites, upsert } from "./records.js";
import { me } from "./session.js";
import { LABELS, formatDateTime, h, toast } from "./ui.js";

const HOUR_MS = 60 * 60 * 1000;

export function pendingMark(pending, table, id) {
  return pending && pending.has(`${table}/${id}`)
    ? h("span", { class: "pill pill-pending", testid: "row-pending", title: t("Not sent yet") }, t("unsent"))
    : null;
}

export function verificationBadge(visit, pending) {
  const unsynced = visit._seq === null || visit._seq === undefined || pending.has(`visits/${visit.id}`);
  const value = unsynced ? "pending" : visit.verification || "unverified";
  const text = unsynced ? t("Waiting to sync") : LABELS.verification[value] || value;
  return h(
    "span",
    { class: `pill pill-${value}`, testid: "visit-verification", dataset: { verification: value } },
    text,
  );
}

// Who wrote a record: a name from the team's users (names: userNames()); a record made on
// this phone and not synced yet has no author field: it is the signed-in user's.
export function authorName(names, id) {
  const user = me();
  if (!id) return user ? user.username : "";
  return (names && names.get(id)) || t("A former colleague");
}

export function visitRow(visit, accountName, pending, names) {
  return h(
    "li",
    { class: "row", testid: "visit-row", dataset: { id: visit.id } },
    h(
      "a",
      { href: `#/visit/${visit.id}`, class: "row-main", testid: "visit-open" },
      h("span", { class: "row-title" }, accountName || LABELS.outcome[visit.outcome] || t("Visit")),
      h(
        "span",
        { class: "row-sub" },
        h("span", { testid: "visit-author" }, authorName(names, visit.user_id)),
        ` · ${formatDateTime(visit.started_at)}`,
        // Under an account's name; on the account's screen the outcome is the title already.
        visit.outcome && accountName ? ` · ${LABELS.outcome[visit.outcome] || visit.outcome}` : "",
      ),
      visit.summary ? h("span", { class: "row-sub clamp" }, visit.summary) : null,
    ),
    verificationBadge(visit, pending),
  );
}

function dueText(task, overdue) {
  const when = formatDateTime(task.due_at);
  return overdue ? t("Overdue · {when}", { when }) : t("Due {when}", { when });
}

export function isOverdue(task, now = Date.now()) {
  return !task.done && task.due_at && new Date(task.due_at).getTime() < now;
}

// A task with its done checkbox and "snooze 1 h". The title is text, not the box's label:
// tapping it must not mark the task done. The box sits in a 44 px label of its own.
// `byAccount` (Today, the day's plan): the account's name is the row's title, the task's
// under it ("Planned visit" for a planned visit named after its account).
export function taskRow(task, accountName, pending, names = null, { byAccount = false } = {}) {
  const overdue = isOverdue(task);
  const titled = byAccount && !!accountName;
  const accountLink = (cls) =>
    h("a", { href: `#/account/${task.account_id}`, class: cls, testid: "task-account" }, accountName);
  const what = titled && task.kind === "visit" && task.title === t("Visit {name}", { name: accountName }) ? LABELS.taskKind.visit : task.title;
  return h(
    "li",
    { class: `row task${task.done ? " done" : ""}`, testid: "task-row", dataset: { id: task.id } },
    h("label", { class: "tap-check" }, h("input", {
      type: "checkbox",
      class: "task-check",
      testid: "task-done",
      checked: !!task.done,
      "aria-label": t("Done: {title}", { title: task.title }),
      onchange: (event) => markDone(task, event.target.checked),
    })),
    h(
      "div",
      { class: "row-main" },
      titled ? accountLink("row-title row-link") : null,
      h("span", { class: titled ? "row-sub" : "row-title", testid: "task-title" }, what),
      h(
        "span",
        { class: `row-sub${overdue ? " overdue" : ""}`, testid: "task-due" },
        task.due_at ? dueText(task, overdue) : t("No due date"),
      ),
      task.remind_at
        ? h("span", { class: "row-sub", testid: "task-remind" }, t("Reminder {when}", { when: formatDateTime(task.remind_at) }))
        : null,
      names && task.assignee_id && (!me() || task.assignee_id !== me().id)
        ? h("span", { class: "row-sub", testid: "task-assignee" }, t("For {name}", { name: authorName(names, task.assignee_id) }))
        : null,
      accountName && !titled ? accountLink("row-sub row-link") : null,
    ),
    h(
      "div",
      { class: "row-actions" },
      pendingMark(pending, "tasks", task.id),
      task.done
        ? null
        : h(
            "button",
            { type: "button", class: "small", testid: "task-snooze", onclick: () => snooze(task) },
            t("Snooze 1 h"),
          ),
      h("a", { href: `#/task/${task.id}/edit`, class: "small button-link", testid: "task-edit",
        "aria-label": t("Edit {title}", { title: task.title }) }, t("Edit")),
    ),
  );
}

// Done, wherever a task is ticked: written at once (offline too), with a few seconds to
// take it back.
export async function markDone(task, done) {
  await upsert("tasks", task.id, { done });
  if (done) toast(t("Task done"), { label: t("Undo"), run: () => markDone(task, false) });
  else toast(t("Task reopened"));
}

// Snooze 1 h: the due time and the reminder move an hour on from the later of their time
// and now (an overdue task is due an hour from now, not still overdue; a reminder in the
// past would fire again at once), and the reminder never ends up after the due time.
// pwa/sw.js repeats this for a notification's Snooze: keep in step.
export function snoozeFields(task, now) {
  const later = (iso) => Math.max(iso ? new Date(iso).getTime() : now, now) + HOUR_MS;
  const due = task.due_at ? later(task.due_at) : null;
  const remind = due === null ? later(task.remind_at) : Math.min(later(task.remind_at), due);
  const fields = { remind_at: new Date(remind).toISOString() };
  if (due !== null) fields.due_at = new Date(due).toISOString();
  return fields;
}

async function snooze(task) {
  await saveWrites([{ table: "tasks", id: task.id, op: "upsert", fields: snoozeFields(task, Date.now()) }]);
  toast(t("Snoozed for an hour"));
}

export function accountNames(accounts) {
  return new Map(accounts.map((a) => [a.id, a.name]));
}
