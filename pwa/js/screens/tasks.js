import { drawRows } from "../chunks.js";
import { accountNames, taskRow } from "../components.js";
import { allRows, pendingKeys } from "../records.js";
import { replaceQuery } from "../router.js";
import { me, userNames } from "../session.js";
import { empty, field, focusedKey, h, link, restoreFocus } from "../ui.js";

// Open tasks first, by due time (undated last); done ones after, newest first.
function ordered(tasks) {
  const open = tasks.filter((t) => !t.done)
    .sort((a, b) => String(a.due_at || "~").localeCompare(String(b.due_at || "~")));
  const done = tasks.filter((t) => t.done)
    .sort((a, b) => String(b.updated_at || "").localeCompare(String(a.updated_at || "")));
  return [...open, ...done];
}

export async function tasksScreen(_params, query) {
  const showDone = field({ name: "show_done", label: "Show done tasks", type: "checkbox",
    testid: "tasks-show-done", value: query.get("done") === "1" });
  const onlyMine = field({ name: "mine", label: "Only mine", type: "checkbox",
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
      .filter((t) => doneBox.checked || !t.done)
      .filter((t) => !mineBox.checked || !t.assignee_id || t.assignee_id === userId));
    const focus = focusedKey(list);
    drawRows(list, shown, (t) => taskRow(t, names.get(t.account_id), pending, users));
    if (!shown.length) list.replaceChildren(h("li", {}, empty("No tasks here.", "tasks-empty")));
    restoreFocus(list, focus);
    const open = shown.filter((t) => !t.done).length;
    count.textContent = `${open} open task${open === 1 ? "" : "s"}`;
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
    h("div", { class: "title-row" }, h("h1", {}, "Tasks"), link("New task", "#/task/new", "task-new", "button-link")),
    h("div", { class: "filters inline" }, onlyMine, showDone),
    count,
    list);
  // Re-draw only the list: a checkbox the rep just ticked keeps its place.
  return { title: "Tasks", el, onData: refresh };
}
