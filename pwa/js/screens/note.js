import { t } from "../i18n.js";
import { draftKey, draftKeeper, draftNotice, loadDraft } from "../drafts.js";
import { getRecord, newId, saveWrites } from "../records.js";
import { findRejection, resolution } from "../rejections.js";
import { navigate } from "../router.js";
import { empty, field, h, link, toast } from "../ui.js";
import { fixNotice } from "./fix-notice.js";

export async function newNoteScreen(_params, query) {
  const accountId = query.get("account");
  const visitId = query.get("visit");
  const account = accountId ? await getRecord("accounts", accountId) : null;
  if (!account) {
    return { title: t("Add a note"), el: h("div", { class: "screen" }, h("h1", {}, t("Add a note")),
      empty(t("Open an account first, then add the note from there."), "note-no-account")) };
  }
  // "Fix and send again" (Rejected screen): the refused note fills the form, as a new note.
  const fix = query.get("fix") ? await findRejection(query.get("fix")) : null;
  const key = draftKey("note", { accountId: account.id, visitId, fix: fix ? fix.key : null });
  const draft = await loadDraft(key);
  const fixBody = fix && typeof fix.fields.body === "string" ? fix.fields.body : "";
  const back = visitId ? `#/visit/${visitId}` : `#/account/${account.id}`;
  const body = field({ name: "body", label: t("Note"), type: "textarea", testid: "note-body",
    required: true, maxlength: 20000, rows: 8, value: draft ? draft.values.body : fixBody });
  const textarea = body.querySelector("textarea");
  const keeper = draftKeeper({
    key, kind: "note", accountId: account.id, restored: draft,
    collect: () => (textarea.value.trim() ? { body: textarea.value } : null),
    preview: (values) => values.body.trim(),
  });
  const error = h("p", { class: "error", role: "alert", testid: "note-error", hidden: true });
  const attach = await import("../attachments.js");
  const captures = attach.held();
  const form = h("form", { class: "stack", testid: "note-form", novalidate: true },
    body, captures.el, error,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", testid: "note-save" }, t("Save note")),
      link(t("Cancel"), back, "note-cancel", "button-link")),
    keeper.status);
  form.addEventListener("input", () => keeper.changed());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (!text) {
      error.textContent = t("Write something first.");
      error.hidden = false;
      textarea.focus();
      return;
    }
    const fields = { account_id: account.id, body: text };
    if (visitId) fields.visit_id = visitId;
    const noteId = newId();
    const kept = attach.attachmentWrites(captures.items, { account_id: account.id, note_id: noteId });
    keeper.stop();
    const resolved = resolution(fix);
    await saveWrites([{ table: "notes", id: noteId, op: "upsert", fields }, ...kept.writes, ...resolved.writes],
      { drafts: [key], rejected: resolved.rejected, blobs: kept.blobs });
    toast(t("Note saved"));
    navigate(back);
  });
  const el = h("div", { class: "screen" },
    h("h1", {}, t("Add a note")),
    h("p", { class: "lead", testid: "note-account" }, account.name),
    fix ? fixNotice(fix) : null,
    draft ? draftNotice(draft, keeper) : null,
    form);
  return { title: t("Add a note"), el, leave: keeper.leave };
}
