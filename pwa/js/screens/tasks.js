import { drawRows } from "../chunks.js";
import { t, tn } from "../i18n.js";
import { accountNames, taskRow } from "../components.js";
import { allRows, pendingKeys } from "../records.js";
import { replaceQuery } from "../router.js";
import { me, userNames } from "../session.js";
import { empty, field, focusedKey, h, link, restoreFocus } from "../ui.js";

// Open tasks first, by due time (undated last); done ones after, newest first.
function ordered(tasks) {
  const open = tasks.filter((task) => !task.done)
    .sort((a, b) => String(a.due_at || "~").localeCompare(String(b.due_at || "~")));
  const done = tasks.filter((task) => task.done)
    .sort((a, b) => String(b.updated_at || "").localeCompare(String(a.updated_at || "")));
  return [...open, ...done];
}

export async function tasksScreen(_params, query) {
  const showDone = field({ name: "show_done", label: t("Show done tasks"), type: "checkbox",
    testid: "tasks-show-done", value: query.get("done") === "1" });
  const onlyMine = field({ name: "mine", label: t("Only mine"), type: "checkbox",
    testid: "tasks-only-mine", value: query.get("all") !== "1" });
  const doneBox = showDone.querySelector("input");
  const mineBox = onlyMine.querySelector("input");
  const list = h("ul", { class: "list", testid: "task-list" });
  const count = h("p", { class: "count", testid: "task-count" });

  async function refresh() {
    const [tasks, accounts, pending, users] = await Promise.all([allRows("tasks"), allRows("accounts"),
      pendingKeys(), userNames()]);
    const names = accountNames(accounts);
    const userId = me() && me().id;
    const shown = ordered(tasks
      .filter((task) => doneBox.checked || !task.done)
      .filter((task) => !mineBox.checked || !task.assignee_id || task.assignee_id === userId));
    const focus = focusedKey(list);
    drawRows(list, shown, (task) => taskRow(task, names.get(task.account_id), pending, users));
    if (!shown.length) list.replaceChildren(h("li", {}, empty(t("No tasks here."), "tasks-empty")));
    restoreFocus(list, focus);
    const open = shown.filter((task) => !task.done).length;
    count.textContent = tn("{n} open task", "{n} open tasks", open);
    count.dataset.count = String(open);
  }
  const onFilter = () => {
    const q = new URLSearchParams();
    if (doneBox.checked) q.set("done", "1");
    if (!mineBox.checked) q.set("all", "1");
    replaceQuery("/tasks", q);
    refresh();
  };
  doneBox.addEventListener("change", onFilter);
  mineBox.addEventListener("change", onFilter);
  await refresh();

  const el = h("div", { class: "screen" },
    h("div", { class: "title-row" }, h("h1", {}, t("Tasks")), link(t("New task"), "#/task/new", "task-new", "button-link")),
    h("div", { class: "filters inline" }, onlyMine, showDone),
    count,
    list);
  // Re-draw only the list: a checkbox the rep just ticked keeps its place.
  return { title: t("Tasks"), el, onData: refresh };
}
