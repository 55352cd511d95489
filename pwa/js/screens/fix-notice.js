// A refused write's cause in words (SPEC 4 rule 12), and the notice above a form opened by
// "Fix and send again". Apart from the Rejected screen (loaded when first opened), as the
// forms that show the notice start with the app.

import { lang, serverError, t } from "../i18n.js";
import { h } from "../ui.js";

// Codes whose server sentence speaks to developers, not reps, and codes the phone's own
// copy may carry with the engine's first sentence (the server's row says more).
const CAUSES = {
  invalid_hlc: t("This phone's clock was wrong when the change was made, so the server could not place it in time. Check the phone's date and time, then fix it and send it again."),
  invalid_base_seq: t("This phone claimed a version of the record the server never had. Send the change again."),
  unknown_table: t("This version of the app sent something the server does not know. Update the app, then fix it and send it again."),
  invalid_id: t("This version of the app sent a record id the server does not accept. Update the app, then fix it and send it again."),
  invalid_op: t("This version of the app sent a kind of change the server does not know. Update the app, then fix it and send it again."),
  not_found: t("The record or its account was deleted, or moved to another team, before this change reached the server."),
  deleted: t("The record was deleted before this change reached the server."),
  erased: t("The record was erased at someone's request; its values are kept nowhere."),
  forbidden: t("You are not allowed to make this change."),
  read_only: t("The app may not change what the server keeps."),
};
const ENGINE_WORDS = new Set(["invalid_hlc", "invalid_base_seq", "unknown_table", "invalid_id", "invalid_op"]);
const GENERIC_NOT_FOUND = /does not exist|^There is no /;

export function causeOf(item) {
  if (ENGINE_WORDS.has(item.error)) return CAUSES[item.error];
  if (item.error === "not_found" && item.source === "phone" && GENERIC_NOT_FOUND.test(item.detail)) {
    return CAUSES.not_found;
  }
  // In another language than English the sentence for the code beats the server's English.
  if (lang !== "en" && CAUSES[item.error]) return CAUSES[item.error];
  return item.detail ? serverError(item.error, item.detail) : CAUSES[item.error] || t("The server refused this change.");
}

// Above a form opened by "Fix and send again".
export function fixNotice(item) {
  return h("div", { class: "notice", testid: "fix-notice", dataset: { id: item.key } },
    h("p", {}, h("strong", {}, t("Sending again a change the server refused.")), " ", causeOf(item)),
    h("p", { class: "hint" }, t("Saving sends it as a new change and marks the refused one resolved.")));
}

