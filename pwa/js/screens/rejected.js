// Writes the server refused (SPEC 4 rule 12), each in words: what it was about, every
// field it carried with its whole value, the real cause, who wrote it and when. The
// writer marks it resolved or fixes it and sends it again; a manager may apply it again,
// on its own account or another. js/rejections.js says where the list comes from.

import { apiFetch, errorDetail, NetworkError } from "../api.js";
import { allRows, getRecord, saveWrites } from "../records.js";
import { listRejections, resolution } from "../rejections.js";
import { navigate, replaceQuery } from "../router.js";
import { me, session, userNames } from "../session.js";
import { dismissRejected, syncNow } from "../sync.js";
import { LABELS, empty, field, formatDate, formatDateTime, h, link, restoreFocus, focusedKey, toast } from "../ui.js";

// Each field a write may carry, in words.
const FIELD_LABELS = {
  name: "Name", status: "Status", phone: "Phone", email: "Email", website: "Website",
  street: "Street", postal_code: "Postal code", city: "City", region: "Region",
  country: "Country", lat: "Latitude", lng: "Longitude", owner_id: "Owner",
  account_id: "Account", title: "Title", started_at: "Started", ended_at: "Ended",
  accuracy_m: "GPS accuracy", outcome: "Outcome", summary: "Summary", body: "Note",
  visit_id: "Visit", due_at: "Due", remind_at: "Remind at", done: "Done",
  assignee_id: "Assignee", kind: "Kind", stage: "Stage", amount: "Amount",
  currency: "Currency", close_date: "Expected close", resolved: "Resolved",
  team_id: "Team",
};
const TABLE_LABELS = { ...FIELD_LABELS, title: "Job title" }; // a contact's title
const NOUNS = {
  accounts: "account", contacts: "contact", visits: "visit", notes: "note", tasks: "task",
  deals: "deal", conflicts: "conflict decision", rejections: "refused change",
};
const USER_FIELDS = new Set(["owner_id", "assignee_id", "user_id", "author_id"]);
const ACCOUNT_BOUND = new Set(["contacts", "visits", "notes", "tasks", "deals"]);

// Codes whose server sentence speaks to developers, not reps, and codes the phone's own
// copy may carry with the engine's first sentence (the server's row says more).
const CAUSES = {
  invalid_hlc: "This phone's clock was wrong when the change was made, so the server could " +
    "not place it in time. Check the phone's date and time, then fix it and send it again.",
  invalid_base_seq: "This phone claimed a version of the record the server never had. " +
    "Send the change again.",
  unknown_table: "This version of the app sent something the server does not know. " +
    "Update the app, then fix it and send it again.",
  invalid_id: "This version of the app sent a record id the server does not accept. " +
    "Update the app, then fix it and send it again.",
  invalid_op: "This version of the app sent a kind of change the server does not know. " +
    "Update the app, then fix it and send it again.",
  not_found: "The record or its account was deleted, or moved to another team, before this " +
    "change reached the server.",
  deleted: "The record was deleted before this change reached the server.",
  erased: "The record was erased at someone's request; its values are kept nowhere.",
  forbidden: "You are not allowed to make this change.",
  read_only: "The app may not change what the server keeps.",
};
const ENGINE_WORDS = new Set(["invalid_hlc", "invalid_base_seq", "unknown_table", "invalid_id", "invalid_op"]);
const GENERIC_NOT_FOUND = /does not exist|^There is no /;

export function causeOf(item) {
  if (ENGINE_WORDS.has(item.error)) return CAUSES[item.error];
  if (item.error === "not_found" && item.source === "phone" && GENERIC_NOT_FOUND.test(item.detail)) {
    return CAUSES.not_found;
  }
  return item.detail || CAUSES[item.error] || "The server refused this change.";
}

// What the card keeps between redraws (a sync redraws the list): pickers, messages.
const cardState = new Map();
function stateOf(key) {
  if (!cardState.has(key)) cardState.set(key, {});
  return cardState.get(key);
}

function isManager() {
  const user = me();
  return !!user && (user.role === "manager" || user.role === "admin");
}

async function context(items) {
  const [accounts, names] = await Promise.all([allRows("accounts"), userNames()]);
  const byId = new Map(accounts.map((a) => [a.id, a]));
  const visits = new Map((await allRows("visits")).map((v) => [v.id, v]));
  accounts.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const present = new Map();
  for (const item of items) {
    present.set(item.key, item.op === "upsert" && item.table !== "accounts"
      ? await getRecord(item.table, item.record_id) : byId.get(item.record_id) || null);
  }
  return { accounts, byId, names, visits, present };
}

function accountName(item, ctx) {
  const account = item.account_id ? ctx.byId.get(item.account_id) : null;
  if (account) return account.name;
  if (item.about.account_name) return item.about.account_name;
  if (item.table === "accounts" && item.fields.name) return item.fields.name;
  return null;
}

function userName(id, ctx) {
  if (!id) return "nobody";
  if (me() && id === me().id) return "you";
  return ctx.names.get(id) || "someone outside your team";
}

function quoted(text) {
  return text ? `“${text}”` : "";
}

// "Visit at Électricité Laurent, 3 Dec 2026, 14:02", "Change to task “Call back” at …".
export function titleOf(item, ctx) {
  const f = item.fields;
  const name = accountName(item, ctx);
  const at = name ? ` at ${name}` : item.account_id ? " at an account not on this phone" : "";
  const noun = NOUNS[item.table] || item.table;
  const own = f.title || f.name || item.about.record_name || "";
  if (item.op === "delete") {
    if (item.table === "accounts") return `Deleting the account ${name || ""}`.trim();
    return `Deleting the ${noun} ${quoted(own)}${at}`.replace(/\s+/g, " ").trim();
  }
  const change = item.about.existed || ctx.present.get(item.key) ? "Change to the " : "";
  const cap = (text) => text[0].toUpperCase() + text.slice(1);
  switch (item.table) {
    case "visits":
      return cap(`${change}visit${at}${f.started_at ? `, ${formatDateTime(f.started_at)}` : ""}`);
    case "notes":
      return cap(`${change}note${name ? ` on ${name}` : at}`);
    case "accounts":
      return cap(`${change}account ${name || ""}`.trim());
    case "conflicts":
      return "Decision on a conflict";
    case "rejections":
      return "Marking a refused change resolved";
    default:
      return cap(`${change}${noun} ${quoted(own)}${at}`.replace(/\s+/g, " ").trim());
  }
}

export function valueOf(name, value, item, ctx) {
  if (value === null || value === undefined || value === "") return "(empty)";
  if (name === "account_id") {
    return value === item.account_id ? accountName(item, ctx) || "an account not on this phone"
      : (ctx.byId.get(value) && ctx.byId.get(value).name) || "an account not on this phone";
  }
  if (USER_FIELDS.has(name)) return userName(value, ctx);
  if (name === "visit_id") {
    const visit = ctx.visits.get(value);
    return visit ? `the visit of ${formatDateTime(visit.started_at)}` : "a visit not on this phone";
  }
  if (name === "team_id") return "another team";
  if (LABELS[name] && LABELS[name][value]) return LABELS[name][value];
  if (name === "kind") return value === "visit" ? "Planned visit" : "To do";
  if (name === "accuracy_m" && typeof value === "number") return `±${Math.round(value)} m`;
  if (name === "close_date") return formatDate(value);
  if (typeof value === "boolean") return value ? "Yes" : "No";
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return formatDateTime(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function fieldsList(item, ctx) {
  const entries = Object.entries(item.fields);
  if (item.op === "delete") return h("p", { class: "row-sub", testid: "rejected-fields" }, "A deletion: it carried no fields.");
  if (!entries.length) return h("p", { class: "row-sub", testid: "rejected-fields" }, "It carried no fields.");
  const labels = item.table === "contacts" ? TABLE_LABELS : FIELD_LABELS;
  return h("dl", { class: "details written", testid: "rejected-fields" },
    entries.map(([name, value]) => [
      h("dt", {}, labels[name] || name),
      h("dd", { testid: "rejected-field", dataset: { field: name } }, valueOf(name, value, item, ctx)),
    ]));
}

function whoAndWhen(item, ctx) {
  const parts = [`Written by ${userName(item.user_id, ctx)}`];
  if (item.written_at) parts.push(formatDateTime(new Date(item.written_at).toISOString()));
  let text = parts.join(", ");
  if (item.refused_at) text += `; refused ${formatDateTime(new Date(item.refused_at).toISOString())}`;
  return `${text}.`;
}

// Where "Fix and send again" opens: the form of the record's kind, filled with the write.
function fixRoute(item, ctx, accountId) {
  const fix = `fix=${encodeURIComponent(item.key)}`;
  const present = ctx.present.get(item.key);
  const account = accountId ? `account=${encodeURIComponent(accountId)}&` : "";
  switch (item.table) {
    case "visits":
      return `#/visit/new?${account}${fix}`;
    case "notes": {
      const visit = item.fields.visit_id && ctx.visits.get(item.fields.visit_id);
      const also = visit && visit.account_id === accountId ? `&visit=${visit.id}` : "";
      return `#/note/new?${account}${fix}${also}`;
    }
    case "accounts":
      return present ? `#/account/${item.record_id}/edit?${fix}` : `#/account/new?${fix}`;
    case "contacts":
    case "deals":
    case "tasks": {
      const kind = item.table.slice(0, -1);
      return present ? `#/${kind}/${item.record_id}/edit?${fix}` : `#/${kind}/new?${account}${fix}`;
    }
    default:
      return null;
  }
}

function accountPicker({ label, testid, accounts, value, blank, onchange }) {
  const block = field({ name: testid, label, type: "select", testid, value,
    options: [["", blank], ...accounts.map((a) => [a.id, a.name || "(no name)"])] });
  block.querySelector("select").addEventListener("change", onchange);
  return block;
}

async function applyAgain(item, state, redraw) {
  if (!navigator.onLine) {
    state.apply = { error: true, text: "Applying again needs a connection: you are offline. Try again once you are back online." };
    redraw();
    return;
  }
  state.apply = { text: "Applying…" };
  redraw();
  let result;
  try {
    result = await apiFetch(`/api/rejections/${item.id}/apply`, {
      method: "POST",
      body: state.applyAccount ? { account_id: state.applyAccount } : {},
      token: session().token,
    });
  } catch (err) {
    if (!(err instanceof NetworkError)) throw err;
    state.apply = { error: true, text: "The server could not be reached, so nothing was applied. Try again once you are back online." };
    redraw();
    return;
  }
  if (result.status >= 200 && result.status < 300) {
    state.apply = { text: "Applied again. It reaches every phone with the next sync." };
    toast("Applied again");
    redraw();
    syncNow();
    return;
  }
  state.apply = { error: true, text: `Not applied: ${errorDetail(result, `the server answered ${result.status}.`)}` };
  redraw();
}

function rejectedCard(item, ctx, redraw) {
  const state = stateOf(item.key);
  const name = accountName(item, ctx);
  const title = titleOf(item, ctx);
  const accountOnPhone = item.account_id && ctx.byId.has(item.account_id);
  const href = accountOnPhone ? `#/account/${item.account_id}` : null;
  const upsert = item.op === "upsert";
  // Only its writer sends it again (a new write is its sender's); a manager applies
  // someone else's again, which keeps its author.
  const own = !item.user_id || (me() && item.user_id === me().id);
  const fixable = own && upsert && !item.resolved &&
    (ACCOUNT_BOUND.has(item.table) || item.table === "accounts");
  const needsAccount = fixable && ACCOUNT_BOUND.has(item.table) && !accountOnPhone &&
    !(item.table === "tasks" && !item.fields.account_id);

  const notes = [];
  if (item.source === "phone" && item.kept_by_server) {
    notes.push("Kept on this phone until the server's copy arrives.");
  } else if (item.source === "phone") {
    notes.push("The server keeps no copy of this one: it stays on this phone until you dismiss it.");
  }
  if (item.about.fixed_at) notes.push(`A fixed copy was sent ${formatDateTime(new Date(item.about.fixed_at).toISOString())}.`);
  if (item.resolved) notes.push(item.pending ? "Resolved; not sent yet." : "Resolved.");

  const actions = [];
  let fixPicker = null;
  if (fixable) {
    if (needsAccount) {
      fixPicker = accountPicker({
        label: name ? `${name} is not on this phone. Send it again on:` : "Send it again on:",
        testid: "rejected-fix-account", accounts: ctx.accounts, value: state.fixAccount || "",
        blank: "Choose an account…", onchange: (event) => {
          state.fixAccount = event.target.value;
          if (state.message) {
            state.message = null;
            redraw();
          }
        },
      });
    }
    actions.push(h("button", { type: "button", class: "primary", testid: "rejected-fix", onclick: () => {
      const accountId = needsAccount ? state.fixAccount : item.fields.account_id || item.account_id;
      if (needsAccount && !accountId) {
        state.message = "Choose the account to send it on first.";
        redraw();
        return;
      }
      const target = fixRoute(item, ctx, accountId);
      if (target) navigate(target);
    } }, "Fix and send again"));
  }
  if (item.source === "server" && !item.resolved) {
    actions.push(h("button", { type: "button", testid: "rejected-resolve", onclick: async () => {
      const { writes } = resolution(item);
      await saveWrites(writes);
      toast("Marked resolved");
    } }, "Mark resolved"));
  }
  if (item.source === "phone") {
    actions.push(h("button", { type: "button", testid: "rejected-dismiss", onclick: async (event) => {
      if (!state.armed) {
        state.armed = true;
        event.target.textContent = "Tap again to dismiss";
        return;
      }
      await dismissRejected(item.mid);
      toast("Dismissed");
    } }, state.armed ? "Tap again to dismiss" : "Dismiss"));
  }

  let apply = null;
  if (isManager() && item.source === "server" && !item.resolved) {
    const picker = upsert && ACCOUNT_BOUND.has(item.table)
      ? accountPicker({
          label: "On account", testid: "rejected-apply-account", accounts: ctx.accounts,
          value: state.applyAccount || "",
          blank: name ? `Its own: ${name}` : "Its own account",
          onchange: (event) => {
            state.applyAccount = event.target.value;
            if (state.apply) {
              state.apply = null;
              redraw();
            }
          },
        })
      : null;
    apply = h("fieldset", { class: "apply-again" },
      h("legend", {}, "Apply again (managers)"),
      picker,
      h("button", { type: "button", testid: "rejected-apply", onclick: () => applyAgain(item, state, redraw) },
        "Apply again"),
      state.apply ? h("p", { class: state.apply.error ? "error" : "hint", role: "status",
        testid: "rejected-apply-message" }, state.apply.text) : null);
  }

  return h("li", { class: `card rejected${item.resolved ? " resolved" : ""}`, testid: "rejected-row",
    dataset: { id: item.key, source: item.source, error: item.error, table: item.table,
      resolved: item.resolved ? "yes" : "no" } },
    h("h2", { class: "row-title", testid: "rejected-title" },
      href ? link(title, href, "rejected-record") : title),
    h("p", { class: "error", testid: "rejected-detail" }, causeOf(item)),
    h("p", { class: "row-sub", testid: "rejected-who" }, whoAndWhen(item, ctx)),
    fieldsList(item, ctx),
    notes.length ? h("p", { class: "hint", testid: "rejected-note" }, notes.join(" ")) : null,
    fixPicker,
    state.message ? h("p", { class: "error", role: "alert", testid: "rejected-message" }, state.message) : null,
    actions.length ? h("div", { class: "actions" }, actions) : null,
    apply);
}

// Above a form opened by "Fix and send again".
export function fixNotice(item) {
  return h("div", { class: "notice", testid: "fix-notice", dataset: { id: item.key } },
    h("p", {}, h("strong", {}, "Sending again a change the server refused. "), causeOf(item)),
    h("p", { class: "hint" }, "Saving sends it as a new change and marks the refused one resolved."));
}

export async function rejectedScreen(_params, query) {
  const showResolved = field({ name: "show_resolved", label: "Show resolved", type: "checkbox",
    testid: "rejected-show-resolved", value: query.get("resolved") === "1" });
  const box = showResolved.querySelector("input");
  const list = h("ul", { class: "list cards", testid: "rejected-list" });
  const count = h("p", { class: "count", testid: "rejected-count" });

  async function refresh() {
    const all = await listRejections();
    const shown = all.filter((item) => box.checked || !item.resolved);
    const ctx = await context(shown);
    const focus = focusedKey(list);
    list.replaceChildren(...shown.map((item) => rejectedCard(item, ctx, refresh)));
    if (!shown.length) {
      list.replaceChildren(h("li", {}, empty(box.checked ? "No refused changes." : "No refused changes to resolve.", "rejected-empty")));
    }
    restoreFocus(list, focus);
    const open = all.filter((item) => !item.resolved).length;
    count.textContent = `${open} to resolve`;
    count.dataset.count = String(open);
  }
  box.addEventListener("change", () => {
    const q = new URLSearchParams();
    if (box.checked) q.set("resolved", "1");
    replaceQuery("/rejected", q);
    refresh();
  });
  await refresh();
  const el = h("div", { class: "screen" },
    h("h1", {}, "Rejected changes"),
    h("p", { class: "hint" }, "The server refused these changes. Each one is kept whole until " +
      "it is resolved: fix it and send it again, or mark it resolved."),
    count, showResolved, list);
  return { title: "Rejected changes", el, onData: refresh };
}
