// One form for creating and editing accounts, contacts, deals and tasks. An edit sends
// only the fields the rep changed, so a colleague's edit to another field is not undone.
// The task form keeps a draft (js/drafts.js) of those changed fields only, so a restored
// draft, too, leaves a colleague's later edit to another field alone.

import { t } from "../i18n.js";
import { accountPicker } from "../account-picker.js";
import { markDone } from "../components.js";
import { deleteNow } from "../db.js";
import { draftKey, draftKeeper, draftNotice, loadDraft } from "../drafts.js";
import { duplicateGate, heldAccounts, keepWarm } from "../duplicates.js";
import { exportButton, wasErased } from "../privacy.js";
import { allRows, getRecord, newId, remove, saveWrites } from "../records.js";
import { findRejection, resolution } from "../rejections.js";
import { navigate } from "../router.js";
import { me, teamUsers } from "../session.js";
import { LABELS, field, fromLocalInput, h, options, toLocalInput, toast } from "../ui.js";
import { fixNotice } from "./fix-notice.js";

const TEXT = 200;

const FORMS = {
  accounts: {
    noun: "account",
    deletable: false,
    fields: [
      { name: "name", label: t("Name"), required: true, maxlength: TEXT },
      { name: "status", label: t("Status"), type: "select", options: options(LABELS.status), initial: "prospect" },
      { name: "phone", label: t("Phone"), type: "tel", maxlength: 50 },
      { name: "email", label: t("Email"), type: "email", maxlength: 254 },
      { name: "website", label: t("Website"), type: "url", maxlength: 500, hint: "https://…" },
      { name: "street", label: t("Street"), maxlength: TEXT },
      { name: "postal_code", label: t("Postal code"), maxlength: 20 },
      { name: "city", label: t("City"), maxlength: 100 },
      { name: "region", label: t("Region"), maxlength: 100 },
      { name: "country", label: t("Country"), maxlength: 100 },
      { name: "lat", label: t("Latitude"), type: "number", kind: "number", min: -90, max: 90, step: "any" },
      { name: "lng", label: t("Longitude"), type: "number", kind: "number", min: -180, max: 180, step: "any" },
      // A rep owns only what they create or claim (an account with no owner); a manager
      // assigns accounts within the team (SPEC section 2).
      { name: "owner_id", label: t("Owner"), type: "select", kind: "user", claimOnly: true },
    ],
    back: (row) => `#/account/${row.id}`,
  },
  contacts: {
    noun: "contact",
    deletable: true,
    parent: true,
    fields: [
      { name: "name", label: t("Name"), required: true, maxlength: TEXT },
      { name: "title", label: t("Job title"), maxlength: TEXT },
      { name: "phone", label: t("Phone"), type: "tel", maxlength: 50 },
      { name: "email", label: t("Email"), type: "email", maxlength: 254 },
    ],
  },
  deals: {
    noun: "deal",
    deletable: true,
    parent: true,
    fields: [
      { name: "title", label: t("Title"), required: true, maxlength: TEXT },
      { name: "stage", label: t("Stage"), type: "select", options: options(LABELS.stage), initial: "lead" },
      { name: "amount", label: t("Amount"), type: "number", kind: "number", min: 0, step: "any" },
      { name: "currency", label: t("Currency"), maxlength: 3, hint: t("Three letters, e.g. EUR") },
      { name: "close_date", label: t("Expected close"), type: "date" },
      { name: "owner_id", label: t("Owner"), type: "select", kind: "user" },
    ],
  },
  // A visit or a note is edited or deleted by its author, a manager of its team or an
  // admin (SPEC section 2); both are made on their own screens, edited here.
  visits: {
    noun: "visit",
    testid: "visit-edit-form", // the new-visit screen's form is visit-form
    deletable: true,
    fields: [
      { name: "outcome", label: t("Outcome"), type: "select", options: options(LABELS.outcome, { blank: "—" }) },
      { name: "summary", label: t("Summary"), type: "textarea", maxlength: 20000, rows: 6 },
      { name: "started_at", label: t("Checked in"), type: "datetime-local", kind: "datetime", required: true },
      { name: "ended_at", label: t("Checked out"), type: "datetime-local", kind: "datetime" },
    ],
    back: (row) => `#/visit/${row.id}`,
  },
  notes: {
    noun: "note",
    testid: "note-edit-form",
    deletable: true,
    fields: [{ name: "body", label: t("Note"), type: "textarea", required: true, maxlength: 20000, rows: 8 }],
  },
  tasks: {
    noun: "task",
    deletable: true,
    draft: "task",
    fields: [
      { name: "title", label: t("Title"), required: true, maxlength: TEXT },
      // Linked to an account from its screen, or picked here (Today, Tasks, an edit).
      { name: "account_id", label: t("Account"), kind: "account" },
      { name: "kind", label: t("Kind"), type: "select", options: options(LABELS.taskKind), initial: "todo" },
      { name: "due_at", label: t("Due"), type: "datetime-local", kind: "datetime" },
      { name: "remind_at", label: t("Remind me at"), type: "datetime-local", kind: "datetime" },
      { name: "assignee_id", label: t("Assignee"), type: "select", kind: "user" },
      { name: "done", label: t("Done"), type: "checkbox", kind: "bool" },
    ],
  },
};

function backTo(table, row) {
  const form = FORMS[table];
  if (form.back) return form.back(row);
  if (row.account_id) return `#/account/${row.account_id}`;
  return table === "tasks" ? "#/tasks" : "#/accounts";
}

// What the control shows for a stored value.
function shown(spec, value) {
  if (spec.kind === "datetime") return toLocalInput(value);
  if (spec.kind === "bool") return !!value;
  return value === null || value === undefined ? "" : String(value);
}

// The stored value for what the control holds.
function parsed(spec, control) {
  if (spec.kind === "bool") return control.checked;
  const raw = control.value.trim();
  if (raw === "") return null;
  if (spec.kind === "number") return Number(raw);
  if (spec.kind === "datetime") return fromLocalInput(raw);
  if (spec.name === "currency") return raw.toUpperCase();
  return raw;
}

function rawOf(spec, control) {
  return spec.kind === "bool" ? control.checked : control.value;
}

function isManager() {
  const user = me();
  return !!user && (user.role === "manager" || user.role === "admin");
}

// Each form's sentences whole: nouns have genders in French.
const WORDS = {
  account: { erased: t("This account was erased on request."), missing: t("This account is not on this phone."),
    pick: "", saved: t("Account saved"), deleted: t("Account deleted"), tapAgain: t("Tap again to delete this account"),
    delete: t("Delete account"), edit: t("Edit account"), create: t("New account") },
  contact: { erased: t("This contact was erased on request."), missing: t("This contact is not on this phone."),
    pick: t("Open an account to add a contact."), saved: t("Contact saved"), deleted: t("Contact deleted"),
    tapAgain: t("Tap again to delete this contact"), delete: t("Delete contact"), edit: t("Edit contact"),
    create: t("New contact") },
  deal: { erased: t("This deal was erased on request."), missing: t("This deal is not on this phone."),
    pick: t("Open an account to add a deal."), saved: t("Deal saved"), deleted: t("Deal deleted"),
    tapAgain: t("Tap again to delete this deal"), delete: t("Delete deal"), edit: t("Edit deal"), create: t("New deal") },
  visit: { erased: t("This visit was erased on request."), missing: t("This visit is not on this phone."),
    pick: t("Open an account to add a visit."), saved: t("Visit saved"), deleted: t("Visit deleted"),
    tapAgain: t("Tap again to delete this visit"), delete: t("Delete visit"), edit: t("Edit visit"), create: t("New visit") },
  note: { erased: t("This note was erased on request."), missing: t("This note is not on this phone."),
    pick: t("Open an account to add a note."), saved: t("Note saved"), deleted: t("Note deleted"),
    tapAgain: t("Tap again to delete this note"), delete: t("Delete note"), edit: t("Edit note"), create: t("New note") },
  task: { erased: t("This task was erased on request."), missing: t("This task is not on this phone."),
    pick: "", saved: t("Task saved"), deleted: t("Task deleted"), tapAgain: t("Tap again to delete this task"),
    delete: t("Delete task"), edit: t("Edit task"), create: t("New task") },
};

export function recordForm(table) {
  return async function screen(params, query) {
    const form = FORMS[table];
    const editing = !!params.id;
    const row = editing ? await getRecord(table, params.id) : null;
    if (editing && !row) {
      const erased = await wasErased(params.id);
      return { title: t("Not found"), el: h("div", { class: "screen" }, h("h1", {}, erased ? t("Erased") : t("Not found")),
        h("p", { class: "empty", testid: erased ? "form-erased" : "form-missing" },
          erased ? WORDS[form.noun].erased : WORDS[form.noun].missing)) };
    }
    const accountId = row ? row.account_id : query.get("account");
    if (form.parent && !accountId) {
      return { title: t("Pick an account"), el: h("div", { class: "screen" }, h("h1", {}, t("Pick an account first")),
        h("p", { class: "empty" }, h("a", { href: "#/accounts" }, WORDS[form.noun].pick))) };
    }
    // "Fix and send again" from the Rejected screen: the refused write fills the form.
    const fix = query.get("fix") ? await findRejection(query.get("fix")) : null;
    const fixKey = fix ? fix.key : null;
    const key = form.draft
      ? draftKey(form.draft, { recordId: row && row.id, accountId, fix: fixKey })
      : null;
    const draft = key ? await loadDraft(key) : null;
    const users = await teamUsers();
    const userOptions = [["", t("Nobody")], ...users.map((u) => [u.id, u.username])];
    const initial = {};
    const controls = {};
    const pickers = [];
    const blocks = form.fields.map((spec) => {
      if (spec.kind === "account") {
        const picker = accountPicker({ ...spec, value: row ? row.account_id : accountId });
        pickers.push(picker);
        controls[spec.name] = picker.control;
        initial[spec.name] = picker.control.value;
        return picker.block;
      }
      let value = row ? row[spec.name] : spec.initial;
      if (!row && spec.kind === "user") value = me() && me().id; // new records are mine
      let options = spec.kind === "user" ? userOptions : spec.options;
      const locked = spec.claimOnly && !isManager() && row && row[spec.name] && row[spec.name] !== me().id;
      if (spec.claimOnly && !isManager()) {
        options = locked
          ? userOptions.filter(([id]) => id === row[spec.name])
          : [["", t("Nobody")], [me().id, me().username]];
      }
      const block = field({ ...spec, value: shown(spec, value), options });
      const control = block.querySelector("input, select, textarea");
      if (locked) {
        control.disabled = true;
        block.append(h("p", { class: "hint", testid: "owner-hint" },
          t("A manager reassigns accounts that have an owner.")));
      }
      controls[spec.name] = control;
      initial[spec.name] = rawOf(spec, control);
      return block;
    });
    // "Plan a visit" on an account: a planned visit there, tomorrow at nine unless changed.
    if (!row && table === "tasks" && query.get("kind") === "visit") {
      controls.kind.value = "visit";
      const account = accountId ? await getRecord("accounts", accountId) : null;
      if (account) controls.title.value = t("Visit {name}", { name: account.name }).slice(0, TEXT);
      const tomorrow = new Date();
      tomorrow.setDate(tomorrow.getDate() + 1);
      tomorrow.setHours(9, 0, 0, 0);
      controls.due_at.value = toLocalInput(tomorrow.toISOString());
    }
    if (fix && !draft) {
      for (const spec of form.fields) {
        if (!(spec.name in fix.fields)) continue;
        const control = controls[spec.name];
        if (control.type === "checkbox") control.checked = !!fix.fields[spec.name];
        else control.value = shown(spec, fix.fields[spec.name]);
      }
    }
    // What the refused write carried that the form has no control for goes again as it was.
    const carried = {};
    if (fix) {
      for (const [name, value] of Object.entries(fix.fields)) {
        if (name !== "account_id" && !form.fields.some((spec) => spec.name === name)) {
          carried[name] = value;
        }
      }
    }
    if (draft) {
      for (const [name, raw] of Object.entries(draft.values.fields)) {
        const control = controls[name];
        if (control && control.type === "checkbox") control.checked = raw;
        else if (control) control.value = raw;
      }
    }
    for (const picker of pickers) picker.sync();
    const keeper = key
      ? draftKeeper({
          key, kind: form.draft, accountId, recordId: row && row.id, restored: draft,
          collect: () => {
            const fields = {};
            for (const spec of form.fields) {
              const raw = rawOf(spec, controls[spec.name]);
              if (raw !== initial[spec.name]) fields[spec.name] = raw;
            }
            return Object.keys(fields).length ? { fields } : null;
          },
          preview: () => controls.title.value.trim() || (row && row.title) || "",
        })
      : null;

    const error = h("p", { class: "error", role: "alert", testid: "form-error", hidden: true });
    const duplicate = h("div", { class: "notice", role: "alert", testid: "duplicate-warning", hidden: true });
    const formEl = h("form", { class: "stack", testid: form.testid || `${form.noun}-form`, novalidate: true },
      ...blocks, error, duplicate,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", testid: "form-save" }, t("Save")),
        h("a", { href: row ? backTo(table, row) : accountId ? `#/account/${accountId}`
          : table === "tasks" ? "#/tasks" : "#/accounts",
          class: "button-link", testid: "form-cancel" }, t("Cancel")),
        editing && (table === "contacts" || table === "accounts")
          ? h("a", { href: `#/history/${table}/${row.id}`, class: "button-link", testid: "form-history" }, t("History"))
          : null,
        editing && table === "contacts" && isManager() ? exportButton(table, row.id) : null),
      keeper && keeper.status);
    if (keeper) {
      formEl.addEventListener("input", () => keeper.changed());
      formEl.addEventListener("change", () => keeper.changed());
    }
    const drafts = key ? [key] : [];
    // A new account the phone likely holds already: say so before saving (SPEC section 9).
    const gate = duplicateGate(duplicate,
      (account) => h("a", { href: `#/account/${account.id}`, class: "button-link", testid: "duplicate-open" }, t("Open it")),
      () => formEl.requestSubmit());

    formEl.addEventListener("submit", async (event) => {
      event.preventDefault();
      const invalid = form.fields.find((spec) => {
        const control = controls[spec.name];
        return !control.validity.valid || (spec.required && !control.value.trim());
      });
      if (invalid) {
        error.textContent = t("Check “{field}”: {problem}", { field: invalid.label, problem: controls[invalid.name].validationMessage || t("it is required.") });
        error.hidden = false;
        controls[invalid.name].focus();
        return;
      }
      const fields = { ...carried };
      for (const spec of form.fields) {
        const control = controls[spec.name];
        if (editing && rawOf(spec, control) === initial[spec.name]) continue;
        const value = parsed(spec, control);
        if (!editing && (value === null || (spec.kind === "bool" && value === false))) continue;
        fields[spec.name] = value;
      }
      if (!editing && table === "accounts" && !gate(fields, await heldAccounts())) return;
      if (!editing && form.parent) fields.account_id = accountId;
      if (keeper) keeper.stop();
      const resolved = resolution(fix);
      if (editing && Object.keys(fields).length === 0) {
        if (fix) {
          // The record already holds what the refused write asked for.
          await saveWrites(resolved.writes, { drafts, rejected: resolved.rejected });
          toast(t("Nothing to send again: marked resolved"));
          navigate(backTo(table, row));
          return;
        }
        if (draft) await deleteNow("drafts", key); // it changes nothing any more
        navigate(backTo(table, row));
        return;
      }
      const id = editing ? row.id : newId();
      await saveWrites([{ table, id, op: "upsert", fields }, ...resolved.writes],
        { drafts, rejected: resolved.rejected });
      if (table === "tasks" && fields.done === true) {
        toast(t("Task saved as done"), { label: t("Undo"), run: () => markDone({ id }, false) });
      } else toast(WORDS[form.noun].saved);
      navigate(backTo(table, { ...(row || {}), ...fields, id }));
    });

    let armed = false;
    const deleteButton = editing && form.deletable
      ? h("button", {
          type: "button",
          class: "danger",
          testid: "form-delete",
          onclick: async (event) => {
            // Deletes are final on the server: ask for a second tap instead of a dialog.
            if (!armed) {
              armed = true;
              event.target.textContent = WORDS[form.noun].tapAgain;
              return;
            }
            if (keeper) keeper.stop();
            await remove(table, row.id, { drafts });
            toast(WORDS[form.noun].deleted);
            navigate(row.account_id ? `#/account/${row.account_id}` : backTo(table, row));
          },
        }, WORDS[form.noun].delete)
      : null;

    const title = editing ? WORDS[form.noun].edit : WORDS[form.noun].create;
    const el = h("div", { class: "screen" }, h("h1", {}, title),
      fix ? fixNotice(fix) : null,
      draft ? draftNotice(draft, keeper) : null, formEl, deleteButton);
    // Its duplicate check reads the phone's accounts now, not on "Save".
    const cool = !editing && table === "accounts" ? keepWarm() : null;
    const leave = keeper || cool ? () => {
      if (cool) cool();
      if (keeper) keeper.leave();
    } : undefined;
    return { title, el, leave };
  };
}
