import { pendingMark } from "../components.js";
import { allRows, pendingKeys } from "../records.js";
import { replaceQuery } from "../router.js";
import { LABELS, field, focusedKey, h, link, options, restoreFocus } from "../ui.js";

const SHOWN_MAX = 200;

// Case- and accent-insensitive text for matching.
function fold(text) {
  return String(text || "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();
}

export function matchAccounts(accounts, q, status) {
  const words = fold(q).split(/\s+/).filter(Boolean);
  return accounts
    .filter((a) => !status || a.status === status)
    .filter((a) => {
      if (!words.length) return true;
      const hay = `${fold(a.name)} ${fold(a.city)}`;
      return words.every((w) => hay.includes(w));
    })
    .sort((a, b) => fold(a.name).localeCompare(fold(b.name)));
}

function accountRow(a, pending) {
  return h(
    "li",
    { class: "row", testid: "account-row", dataset: { id: a.id } },
    h(
      "a",
      { href: `#/account/${a.id}`, class: "row-main", testid: "account-open" },
      h("span", { class: "row-title", testid: "account-row-name" }, a.name),
      h("span", { class: "row-sub" }, [a.city, a.region].filter(Boolean).join(", ") || "No address"),
    ),
    pendingMark(pending, "accounts", a.id),
    h("span", { class: `pill pill-${a.status || "prospect"}` }, LABELS.status[a.status || "prospect"] || a.status),
  );
}

export async function accountsScreen(_params, query) {
  const search = field({ name: "q", label: "Search name or city", type: "search",
    testid: "account-search", value: query.get("q") || "" });
  const status = field({ name: "status", label: "Status", type: "select", testid: "account-status-filter",
    value: query.get("status") || "", options: options(LABELS.status, { blank: "All" }) });
  const count = h("p", { class: "count", testid: "account-count", "aria-live": "polite" });
  const list = h("ul", { class: "list", testid: "account-list" });
  const input = search.querySelector("input");
  const select = status.querySelector("select");

  async function refresh() {
    const [accounts, pending] = await Promise.all([allRows("accounts"), pendingKeys()]);
    const found = matchAccounts(accounts, input.value, select.value);
    const focus = focusedKey(list);
    list.replaceChildren(...found.slice(0, SHOWN_MAX).map((a) => accountRow(a, pending)));
    restoreFocus(list, focus);
    count.textContent =
      found.length > SHOWN_MAX
        ? `Showing ${SHOWN_MAX} of ${found.length} accounts; refine the search`
        : `${found.length} account${found.length === 1 ? "" : "s"}`;
    count.dataset.count = String(found.length);
  }

  function onInput() {
    const q = new URLSearchParams();
    if (input.value) q.set("q", input.value);
    if (select.value) q.set("status", select.value);
    replaceQuery("/accounts", q);
    refresh();
  }
  input.addEventListener("input", onInput);
  select.addEventListener("change", onInput);
  await refresh();

  const el = h(
    "div",
    { class: "screen" },
    h("div", { class: "title-row" }, h("h1", {}, "Accounts"),
      link("New account", "#/account/new", "account-new", "button-link")),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, search, status),
    count,
    list,
  );
  return { title: "Accounts", el, onData: refresh };
}
