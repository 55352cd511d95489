// Writes the server refused. They never block later writes; the rep sees why here.

import { getRecord } from "../records.js";
import { dismissRejected, rejectedWrites } from "../sync.js";
import { LABELS, empty, formatTime, h, link } from "../ui.js";
import { formatValue } from "./conflicts.js";

function summary(entry) {
  if (entry.op === "delete") return "Delete";
  return Object.entries(entry.fields || {})
    .map(([k, v]) => `${k}: ${formatValue(v)}`)
    .join(", ")
    .slice(0, 200);
}

async function recordHref(entry) {
  if (entry.table === "accounts") return `#/account/${entry.id}`;
  const row = await getRecord(entry.table, entry.id);
  if (row && row.account_id) return `#/account/${row.account_id}`;
  return null;
}

export async function rejectedScreen() {
  const list = (await rejectedWrites()).slice().reverse();
  const rows = await Promise.all(list.map(async (r) => {
    const href = await recordHref(r);
    const label = `${LABELS.table[r.table] || r.table}${r.op === "delete" ? " delete" : " change"}`;
    return h("li", { class: "card", testid: "rejected-row", dataset: { id: String(r.mid) } },
      h("p", { class: "row-title" }, href ? link(label, href, "rejected-record") : label,
        h("span", { class: "row-sub" }, ` at ${formatTime(r.at)}`)),
      h("p", { class: "error", testid: "rejected-detail" },
        (r.error && (r.error.detail || r.error.error)) || "Refused by the server."),
      h("p", { class: "row-sub", testid: "rejected-fields" }, summary(r)),
      h("button", { type: "button", class: "small", testid: "rejected-dismiss",
        onclick: () => dismissRejected(r.mid) }, "Dismiss"));
  }));
  const el = h("div", { class: "screen" },
    h("h1", {}, "Rejected changes"),
    h("p", { class: "hint" }, "The server refused these changes; the records show what the server has."),
    rows.length
      ? [h("ul", { class: "list cards" }, rows),
         h("button", { type: "button", testid: "rejected-dismiss-all", onclick: () => dismissRejected() },
           "Dismiss all")]
      : empty("No rejected changes.", "rejected-empty"));
  return { title: "Rejected", el, live: true };
}
