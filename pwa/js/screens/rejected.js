// Writes the server refused (SPEC 4 rule 12), each in words: what it was about, every
// field it carried with its whole value, the real cause, who wrote it and when. The
// writer marks it resolved or fixes it and sends it again; a manager may apply it again,
// on its own account or another. js/rejections.js says where the list comes from.

import { formatNumber, mark, t, tn } from "../i18n.js";
import { apiFetch, errorDetail, NetworkError } from "../api.js";
import { allRows, getRecord, saveWrites } from "../records.js";
import { listRejections, resolution } from "../rejections.js";
import { causeOf } from "./fix-notice.js";
import { navigate, replaceQuery } from "../router.js";
import { me, session, userNames } from "../session.js";
import { dismissRejected, syncNow } from "../sync.js";
import { LABELS, empty, field, formatDate, formatDateTime, h, link, restoreFocus, focusedKey, toast } from "../ui.js";

// Each field a write may carry, in words.
const FIELD_LABELS = {
  name: t("Name"), status: t("Status"), phone: t("Phone"), email: t("Email"), website: t("Website"),
  street: t("Street"), postal_code: t("Postal code"), city: t("City"), region: t("Region"),
  country: t("Country"), lat: t("Latitude"), lng: t("Longitude"), owner_id: t("Owner"),
  account_id: t("Account"), title: t("Title"), started_at: t("Started"), ended_at: t("Ended"),
  accuracy_m: t("GPS accuracy"), outcome: t("Outcome"), summary: t("Summary"), body: t("Note"),
  visit_id: t("Visit"), due_at: t("Due"), remind_at: t("Remind at"), done: t("Done"),
  assignee_id: t("Assignee"), kind: t("Kind"), stage: t("Stage"), amount: t("Amount"),
  currency: t("Currency"), close_date: t("Expected close"), resolved: t("Resolved"),
  team_id: t("Team"),
};
const TABLE_LABELS = { ...FIELD_LABELS, title: t("Job title") }; // a contact's title
// A refused write's title, whole per kind of record (genders in French): {at} is "at
// <account>", {on} "on <account>", {own} the record's quoted name, {when} ", <date>".
const TITLES = {
  visits: [mark("Visit {at}{when}"), mark("Change to the visit {at}{when}"), mark("Deleting the visit {at}")],
  notes: [mark("Note {on}"), mark("Change to the note {on}"), mark("Deleting the note {at}")],
  accounts: [mark("Account {name}"), mark("Change to the account {name}"), mark("Deleting the account {name}")],
  contacts: [mark("Contact {own} {at}"), mark("Change to the contact {own} {at}"), mark("Deleting the contact {own} {at}")],
  tasks: [mark("Task {own} {at}"), mark("Change to the task {own} {at}"), mark("Deleting the task {own} {at}")],
  deals: [mark("Deal {own} {at}"), mark("Change to the deal {own} {at}"), mark("Deleting the deal {own} {at}")],
};
const USER_FIELDS = new Set(["owner_id", "assignee_id", "user_id", "author_id"]);
const ACCOUNT_BOUND = new Set(["contacts", "visits", "notes", "tasks", "deals"]);

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
  if (!id) return t("nobody");
  if (me() && id === me().id) return t("you");
  return ctx.names.get(id) || t("someone outside your team");
}

function quoted(text) {
  return text ? `“${text}”` : "";
}

// "Visit at Électricité Laurent, 3 Dec 2026, 14:02", "Change to task “Call back” at …".
export function titleOf(item, ctx) {
  const f = item.fields;
  const name = accountName(item, ctx);
  if (item.table === "conflicts") return t("Decision on a conflict");
  if (item.table === "rejections") return t("Marking a refused change resolved");
  const at = name ? t("at {name}", { name }) : item.account_id ? t("at an account not on this phone") : "";
  const params = {
    at, name: name || "", on: name ? t("on {name}", { name }) : at,
    own: quoted(f.title || f.name || item.about.record_name || ""),
    when: f.started_at ? `, ${formatDateTime(f.started_at)}` : "",
  };
  const [plain, change, del] = TITLES[item.table] || [item.table, item.table, item.table];
  const which = item.op === "delete" ? del : item.about.existed || ctx.present.get(item.key) ? change : plain;
  return t(which, params).replace(/\s+/g, " ").replace(/ ,/g, ",").trim();
}

export function valueOf(name, value, item, ctx) {
  if (value === null || value === undefined || value === "") return "(empty)";
  if (name === "account_id") {
    return value === item.account_id ? accountName(item, ctx) || t("an account not on this phone")
      : (ctx.byId.get(value) && ctx.byId.get(value).name) || t("an account not on this phone");
  }
  if (USER_FIELDS.has(name)) return userName(value, ctx);
  if (name === "visit_id") {
    const visit = ctx.visits.get(value);
    return visit ? t("the visit of {when}", { when: formatDateTime(visit.started_at) }) : t("a visit not on this phone");
  }
  if (name === "team_id") return t("another team");
  if (LABELS[name] && LABELS[name][value]) return LABELS[name][value];
  if (name === "kind") return value === "visit" ? LABELS.taskKind.visit : LABELS.taskKind.todo;
  if (name === "accuracy_m" && typeof value === "number") return `±${formatNumber(Math.round(value))} m`;
  if (name === "close_date") return formatDate(value);
  if (typeof value === "boolean") return value ? t("Yes") : t("No");
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return formatDateTime(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function fieldsList(item, ctx) {
  const entries = Object.entries(item.fields);
  if (item.op === "delete") return h("p", { class: "row-sub", testid: "rejected-fields" }, t("A deletion: it carried no fields."));
  if (!entries.length) return h("p", { class: "row-sub", testid: "rejected-fields" }, t("It carried no fields."));
  const labels = item.table === "contacts" ? TABLE_LABELS : FIELD_LABELS;
  return h("dl", { class: "details written", testid: "rejected-fields" },
    entries.map(([name, value]) => [
      h("dt", {}, labels[name] || name),
      h("dd", { testid: "rejected-field", dataset: { field: name } }, valueOf(name, value, item, ctx)),
    ]));
}

function whoAndWhen(item, ctx) {
  const parts = [t("Written by {who}", { who: userName(item.user_id, ctx) })];
  if (item.written_at) parts.push(formatDateTime(new Date(item.written_at).toISOString()));
  let text = parts.join(", ");
  if (item.refused_at) text += `; ${t("refused {when}", { when: formatDateTime(new Date(item.refused_at).toISOString()) })}`;
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
    options: [["", blank], ...accounts.map((a) => [a.id, a.name || t("(no name)")])] });
  block.querySelector("select").addEventListener("change", onchange);
  return block;
}

async function applyAgain(item, state, redraw) {
  if (!navigator.onLine) {
    state.apply = { error: true, text: t("Applying again needs a connection: you are offline. Try again once you are back online.") };
    redraw();
    return;
  }
  state.apply = { text: t("Applying…") };
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
    state.apply = { error: true, text: t("The server could not be reached, so nothing was applied. Try again once you are back online.") };
    redraw();
    return;
  }
  if (result.status >= 200 && result.status < 300) {
    state.apply = { text: t("Applied again. It reaches every phone with the next sync.") };
    toast(t("Applied again"));
    redraw();
    syncNow();
    return;
  }
  state.apply = { error: true, text: t("Not applied: {why}", { why: errorDetail(result, t("the server answered {status}.", { status: result.status })) }) };
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
    notes.push(t("Kept on this phone until the server's copy arrives."));
  } else if (item.source === "phone") {
    notes.push(t("The server keeps no copy of this one: it stays on this phone until you dismiss it."));
  }
  if (item.about.fixed_at) notes.push(t("A fixed copy was sent {when}.", { when: formatDateTime(new Date(item.about.fixed_at).toISOString()) }));
  if (item.resolved) notes.push(item.pending ? t("Resolved; not sent yet.") : t("Resolved."));

  const actions = [];
  let fixPicker = null;
  if (fixable) {
    if (needsAccount) {
      fixPicker = accountPicker({
        label: name ? t("{name} is not on this phone. Send it again on:", { name }) : t("Send it again on:"),
        testid: "rejected-fix-account", accounts: ctx.accounts, value: state.fixAccount || "",
        blank: t("Choose an account…"), onchange: (event) => {
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
        state.message = t("Choose the account to send it on first.");
        redraw();
        return;
      }
      const target = fixRoute(item, ctx, accountId);
      if (target) navigate(target);
    } }, t("Fix and send again")));
  }
  if (item.source === "server" && !item.resolved) {
    actions.push(h("button", { type: "button", testid: "rejected-resolve", onclick: async () => {
      const { writes } = resolution(item);
      await saveWrites(writes);
      toast(t("Marked resolved"));
    } }, t("Mark resolved")));
  }
  if (item.source === "phone") {
    actions.push(h("button", { type: "button", testid: "rejected-dismiss", onclick: async (event) => {
      if (!state.armed) {
        state.armed = true;
        event.target.textContent = t("Tap again to dismiss");
        return;
      }
      await dismissRejected(item.mid);
      toast(t("Dismissed"));
    } }, state.armed ? t("Tap again to dismiss") : t("Dismiss")));
  }

  let apply = null;
  if (isManager() && item.source === "server" && !item.resolved) {
    const picker = upsert && ACCOUNT_BOUND.has(item.table)
      ? accountPicker({
          label: t("On account"), testid: "rejected-apply-account", accounts: ctx.accounts,
          value: state.applyAccount || "",
          blank: name ? t("Its own: {name}", { name }) : t("Its own account"),
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
      h("legend", {}, t("Apply again (managers)")),
      picker,
      h("button", { type: "button", testid: "rejected-apply", onclick: () => applyAgain(item, state, redraw) },
        t("Apply again")),
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

export async function rejectedScreen(_params, query) {
  const showResolved = field({ name: "show_resolved", label: t("Show resolved"), type: "checkbox",
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
      list.replaceChildren(h("li", {}, empty(box.checked ? t("No refused changes.") : t("No refused changes to resolve."), "rejected-empty")));
    }
    restoreFocus(list, focus);
    const open = all.filter((item) => !item.resolved).length;
    count.textContent = tn("{n} to resolve", "{n} to resolve", open);
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
    h("h1", {}, t("Rejected changes")),
    h("p", { class: "hint" }, t("The server refused these changes. Each one is kept whole until it is resolved: fix it and send it again, or mark it resolved.")),
    count, showResolved, list);
  return { title: t("Rejected changes"), el, onData: refresh };
}
