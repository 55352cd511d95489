import { t, tn } from "../i18n.js";
import { pendingMark } from "../components.js";
import { localIndex, unsentKeys } from "../account-index.js";
import { navigate, replaceQuery } from "../router.js";
import { searchAsTyped, sortAccounts } from "../search.js";
import { userNames } from "../session.js";
import { isManager } from "../team.js";
import { LABELS, field, focusedKey, h, link, options, restoreFocus } from "../ui.js";
import { virtualList } from "../virtual-list.js";

// The selection a manager makes to reassign accounts (kept while the app is open).
const T = {
  select: t("Select"),
  done: t("Done"),
  selected: (n) => tn("{n} selected", "{n} selected", n),
  all: (n) => tn("Select the {n} account in this filter", "Select all {n} in this filter", n),
  clear: t("Clear"),
  reassign: t("Reassign…"),
  onMap: t("Pick on a map"),
  pick: (name) => t("Select {name}", { name }),
};
const selection = new Set();

const SORT_LABELS = { name: t("Name"), nearest: t("Nearest"), visited: t("Last visited"), owner: t("Owner") };

// Where the phone is, for "Nearest"; null when it cannot tell (no permission, no fix).
function whereAmI() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) resolve(null);
    else navigator.geolocation.getCurrentPosition((p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude }),
      () => resolve(null), { timeout: 15000, maximumAge: 60000 });
  });
}

function accountRow(a, pending, selecting, ticked, onPick) {
  return h(
    "li",
    { class: "row", testid: "account-row", dataset: { id: a.id } },
    selecting
      ? h("input", { type: "checkbox", class: "task-check", testid: "account-select", checked: ticked(a.id),
        "aria-label": T.pick(a.name), onchange: (e) => onPick(a.id, e.target.checked) })
      : null,
    h(
      "a",
      { href: `#/account/${a.id}`, class: "row-main", testid: "account-open" },
      h("span", { class: "row-title", testid: "account-row-name" }, a.name),
      h("span", { class: "row-sub" }, [a.postal_code, a.city].filter(Boolean).join(" ") || t("No address")),
    ),
    pendingMark(pending, "accounts", a.id),
    h("span", { class: `pill pill-${a.status || "prospect"}` }, LABELS.status[a.status || "prospect"] || a.status),
  );
}

export async function accountsScreen(_params, query) {
  const search = field({ name: "q", label: t("Search"), type: "search", testid: "account-search",
    value: query.get("q") || "", hint: t("Name, city, street, postcode, phone or contact") });
  const status = field({ name: "status", label: t("Status"), type: "select", testid: "account-status-filter",
    value: query.get("status") || "", options: options(LABELS.status, { blank: t("All") }) });
  const sort = field({ name: "sort", label: t("Sort by"), type: "select", testid: "account-sort",
    value: query.get("sort") || "name", options: Object.entries(SORT_LABELS) });
  const sortSelect = sort.querySelector("select");
  search.classList.add("filters-wide");
  const sortNote = h("p", { class: "hint", testid: "account-sort-note", "aria-live": "polite" });
  let position = null;
  const count = h("p", { class: "count", testid: "account-count", "aria-live": "polite" });
  const list = h("ul", { class: "list", testid: "account-list" });
  const input = search.querySelector("input");
  const select = status.querySelector("select");

  let searched = null; // the last searchAsTyped answer: the next keystroke narrows it
  let found = []; // the accounts listed, in order
  let pending = new Set();
  // Every account found is a row to scroll to; only those on screen are in the page.
  const rows = virtualList(list, (a) => accountRow(a, pending, selecting, ticked, pick));
  const ticked = (id) => allInFilter || selection.has(id);

  async function refresh() {
    const [index, unsentNow, names] = await Promise.all([localIndex(), unsentKeys(),
      sortSelect.value === "owner" ? userNames() : null]);
    pending = unsentNow;
    searched = searchAsTyped(index, input.value, select.value, searched);
    const matched = searched.entries.map((e) => e.account);
    // The index is in name order, and so is what a search finds.
    found = sortSelect.value === "name" ? matched
      : sortAccounts(matched, sortSelect.value, { position, names: names || undefined });
    const focus = focusedKey(list);
    rows.show(found);
    shownCount = found.length;
    drawSelection();
    restoreFocus(list, focus);
    count.textContent = tn("{n} account", "{n} accounts", found.length);
    count.dataset.count = String(found.length);
  }

  // Managers: "Select" puts a box on each row; the bar under the filters reassigns them.
  const manager = isManager();
  let selecting = manager && query.get("select") === "1";
  let shownCount = 0;
  let allInFilter = false;
  const modeButton = manager ? h("button", { type: "button", class: "small", testid: "account-select-mode" }) : null;
  const picked = h("span", { testid: "account-selected", "aria-live": "polite" });
  const allButton = h("button", { type: "button", class: "small", testid: "account-select-all" });
  const clearButton = h("button", { type: "button", class: "small", testid: "account-select-clear" }, T.clear);
  const reassignButton = h("button", { type: "button", class: "small primary", testid: "account-reassign" }, T.reassign);
  const bar = h("div", { class: "selection-bar", testid: "account-selection", hidden: true },
    picked, allButton, clearButton, reassignButton,
    link(T.onMap, "#/campaign/new", "account-select-map", "button-link small"));
  function drawSelection() {
    if (!manager) return;
    modeButton.textContent = selecting ? T.done : T.select;
    modeButton.setAttribute("aria-pressed", String(selecting));
    bar.hidden = !selecting;
    const n = allInFilter ? shownCount : selection.size;
    picked.textContent = T.selected(n);
    picked.dataset.count = String(n);
    allButton.textContent = T.all(shownCount);
    reassignButton.disabled = n === 0;
  }
  function pick(id, on) {
    if (allInFilter) for (const a of found) selection.add(a.id); // every one but this
    allInFilter = false;
    if (on) selection.add(id);
    else selection.delete(id);
    drawSelection();
  }
  if (manager) {
    modeButton.addEventListener("click", () => {
      selecting = !selecting;
      onInput();
    });
    allButton.addEventListener("click", () => {
      allInFilter = true;
      rows.redraw(); // each row's box ticked, those scrolled to later too
      drawSelection();
    });
    clearButton.addEventListener("click", () => {
      allInFilter = false;
      selection.clear();
      refresh();
    });
    reassignButton.addEventListener("click", () => {
      const q = new URLSearchParams();
      if (allInFilter) {
        q.set("all", "1");
        if (input.value) q.set("q", input.value);
        if (select.value) q.set("status", select.value);
      } else q.set("ids", [...selection].join(","));
      navigate(`#/reassign?${q}`);
    });
  }

  function onInput() {
    const q = new URLSearchParams();
    if (input.value) q.set("q", input.value);
    if (select.value) q.set("status", select.value);
    if (sortSelect.value !== "name") q.set("sort", sortSelect.value);
    if (selecting) q.set("select", "1");
    allInFilter = false;
    replaceQuery("/accounts", q);
    refresh();
  }
  // "Nearest" asks the phone where it is (GPS works offline) each time it is chosen.
  async function onSort() {
    sortNote.textContent = "";
    if (sortSelect.value === "nearest") {
      sortNote.textContent = t("Finding where you are…");
      position = await whereAmI();
      sortNote.textContent = position ? "" : t("Your position is unknown: sorted by name until it is.");
    }
    onInput();
  }
  input.addEventListener("input", onInput);
  select.addEventListener("change", onInput);
  sortSelect.addEventListener("change", onSort);
  if (sortSelect.value === "nearest") onSort();
  else await refresh();

  const el = h(
    "div",
    { class: "screen" },
    h("div", { class: "title-row" }, h("h1", {}, t("Accounts")),
      modeButton, link(t("New account"), "#/account/new", "account-new", "button-link")),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, search, status, sort),
    sortNote,
    bar,
    count,
    list,
  );
  return { title: t("Accounts"), el, onData: refresh };
}
