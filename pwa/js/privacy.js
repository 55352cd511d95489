// SPEC section 12 on the phone. A manager's "Export data" downloads a record's export
// (online: the server holds its history); a record erased on request shows as such.

import { t } from "./i18n.js";
import { apiFetch, errorDetail } from "./api.js";
import { getMeta } from "./db.js";
import { session } from "./session.js";
import { h } from "./ui.js";

export function exportButton(table, id) {
  const note = h("span", { class: "hint", testid: "export-note", role: "status" });
  const button = h("button", { type: "button", class: "button-link", testid: "record-export", onclick: async () => {
    note.textContent = t("Exporting…");
    let result;
    try {
      result = await apiFetch(`/api/privacy/export?table=${table}&id=${id}`, { token: session().token, timeoutMs: 60000 });
    } catch {
      note.textContent = t("The export needs a connection.");
      return;
    }
    if (result.status !== 200) {
      note.textContent = errorDetail(result, t("The export failed."));
      return;
    }
    const a = h("a", { download: `fieldcrm-${table.slice(0, -1)}-${id}.json`,
      href: URL.createObjectURL(new Blob([JSON.stringify(result.data, null, 2)], { type: "application/json" })) });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    note.textContent = t("Exported.");
  } }, t("Export data"));
  return [button, note];
}

// Whether this record was erased on request (its id came with an evict marked erased).
export async function wasErased(id) {
  return !!((await getMeta("erased")) || {})[id];
}
