// DOM building without HTML strings: user text only ever becomes text nodes, and the CSP
// (no inline styles or scripts) holds by construction.

import { locale, t } from "./i18n.js";

let nextId = 0;

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled form control. spec: {name, label, type, value, required, options, testid,
// min, max, step, maxlength, hint, rows}
export function field(spec) {
  const id = uid(spec.name);
  const testid = spec.testid || `field-${spec.name}`;
  let control;
  if (spec.type === "select") {
    control = h(
      "select",
      { id, name: spec.name, testid, required: spec.required },
      (spec.options || []).map(([value, label]) =>
        h("option", { value, selected: String(spec.value ?? "") === String(value) }, label),
      ),
    );
  } else if (spec.type === "textarea") {
    control = h("textarea", {
      id,
      name: spec.name,
      testid,
      required: spec.required,
      maxlength: spec.maxlength,
      rows: spec.rows || 4,
    });
    control.value = spec.value ?? "";
  } else if (spec.type === "checkbox") {
    control = h("input", { id, name: spec.name, type: "checkbox", testid, checked: !!spec.value });
    return h("div", { class: "field field-check" }, control, h("label", { for: id }, spec.label));
  } else {
    control = h("input", {
      id,
      name: spec.name,
      type: spec.type || "text",
      testid,
      required: spec.required,
      min: spec.min,
      max: spec.max,
      step: spec.step,
      maxlength: spec.maxlength,
      inputmode: spec.inputmode,
      autocomplete: spec.autocomplete || "off",
    });
    control.value = spec.value ?? "";
  }
  const hintId = spec.hint ? uid("hint") : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, spec.label, spec.required ? h("span", { class: "req" }, " *") : null),
    control,
    hintId ? h("p", { id: hintId, class: "hint" }, spec.hint) : null,
  );
}

export function button(label, testid, onclick, cls = "") {
  return h("button", { type: "button", testid, class: cls || null, onclick }, label);
}

export function link(label, href, testid, cls = "") {
  return h("a", { href, testid, class: cls || null }, label);
}

export function section(title, testid, ...children) {
  const headingId = uid("sec");
  return h(
    "section",
    { class: "card", testid, "aria-labelledby": headingId },
    h("h2", { id: headingId }, title),
    ...children,
  );
}

export function empty(text, testid) {
  return h("p", { class: "empty", testid }, text);
}

// Announced to screen readers and shown for a few seconds. With `action` ({label, run}),
// a button (e.g. Undo) stays a little longer; a later toast replaces it.
let toastTimer = null;
export function toast(message, action = null) {
  const el = document.querySelector("[data-testid=toast]");
  if (!el) return;
  // The region stays in the page (hidden live regions are not announced reliably); CSS
  // draws nothing while it is empty.
  const clear = () => {
    el.replaceChildren();
    el.classList.remove("has-action");
  };
  el.replaceChildren(h("span", {}, message));
  el.classList.toggle("has-action", !!action);
  if (action) {
    el.append(h("button", { type: "button", class: "toast-action", testid: "toast-action",
      onclick: () => {
        clear();
        action.run();
      } }, action.label));
  }
  if (toastTimer) clearTimeout(toastTimer);
  toastTimer = setTimeout(clear, action ? 7000 : 4000);
}

// Said by screen readers through the shell's polite live region. Emptied first, so the
// same words said twice are heard twice.
export function announce(message) {
  const el = document.querySelector("[data-testid=live-status]");
  if (!el) return;
  el.textContent = "";
  setTimeout(() => {
    el.textContent = message;
  }, 100);
}

// Dates: the wire carries ISO 8601 with an offset; the phone shows local time, in the
// app's language (formatters made once: Intl's constructors are slow).
const dateTimeFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const timeFormat = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(locale);

export function formatDateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return dateTimeFormat.format(d);
}

export function formatTime(ms) {
  if (!ms) return "";
  return timeFormat.format(new Date(ms));
}

export function formatDate(value) {
  if (!value) return "";
  const d = new Date(value.length === 10 ? `${value}T00:00:00` : value);
  return Number.isNaN(d.getTime()) ? String(value) : dateFormat.format(d);
}

// <input type="datetime-local"> speaks local wall time without an offset.
export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}`
  );
}

export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function nowIso() {
  return new Date().toISOString();
}

export const LABELS = {
  taskKind: { todo: t("To do"), visit: t("Planned visit") },
  status: { prospect: t("Prospect"), customer: t("Customer"), inactive: t("Inactive") },
  outcome: {
    met: t("Met"),
    no_answer: t("No answer"),
    follow_up: t("Follow-up needed"),
    won: t("Won"),
    lost: t("Lost"),
  },
  stage: {
    lead: t("Lead"),
    qualified: t("Qualified"),
    proposal: t("Proposal"),
    negotiation: t("Negotiation"),
    won: t("Won"),
    lost: t("Lost"),
  },
  verification: {
    verified: t("Verified on site"),
    out_of_range: t("Out of range"),
    low_accuracy: t("Low GPS accuracy"),
    unverified: t("Unverified"),
  },
  // A record's fields in words (conflicts name the field they are about).
  field: {
    name: t("Name"), status: t("Status"), phone: t("Phone"), email: t("Email"), website: t("Website"),
    street: t("Street"), postal_code: t("Postal code"), city: t("City"), region: t("Region"),
    country: t("Country"), lat: t("Latitude"), lng: t("Longitude"), owner_id: t("Owner"),
    account_id: t("Account"), title: t("Title"), started_at: t("Started"), ended_at: t("Ended"),
    outcome: t("Outcome"), summary: t("Summary"), body: t("Note"), due_at: t("Due"),
    remind_at: t("Remind at"), done: t("Done"), assignee_id: t("Assignee"), kind: t("Kind"),
    stage: t("Stage"), amount: t("Amount"), currency: t("Currency"), close_date: t("Expected close"),
  },
  table: {
    accounts: t("Account"),
    contacts: t("Contact"),
    visits: t("Visit"),
    notes: t("Note"),
    tasks: t("Task"),
    deals: t("Deal"),
    conflicts: t("Conflict"),
    attachments: t("Photo or voice note"),
  },
};

export function options(map, { blank = null } = {}) {
  const list = Object.entries(map);
  return blank === null ? list : [["", blank], ...list];
}

// Which control inside `root` has focus, by testid and the id of the row it sits in, so
// it can be focused again after the rows are drawn anew.
export function focusedKey(root) {
  const el = document.activeElement;
  if (!el || !root.contains(el) || !el.dataset.testid) return null;
  const row = el.closest("[data-id]");
  return { testid: el.dataset.testid, id: row ? row.dataset.id : null };
}

export function restoreFocus(root, key) {
  if (!key) return;
  const scope = key.id ? root.querySelector(`[data-id="${CSS.escape(key.id)}"]`) : root;
  const el = scope && scope.querySelector(`[data-testid="${CSS.escape(key.testid)}"]`);
  if (el && el !== document.activeElement) el.focus({ preventScroll: true });
}
