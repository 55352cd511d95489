// A record's history (SPEC section 11) in words: "Bruno changed the phone from “0478” to
// “0479”, from his phone · 3 Dec 14:02". It is read from the server (GET /api/history/...);
// the phone keeps the last one read of the records it holds (meta "history", at most
// KEPT, dropped with the record: js/sync.js), shown offline with the day it was read.

import { t, tn } from "../i18n.js";
import { apiFetch, NetworkError } from "../api.js";
import { getMeta, write } from "../db.js";
import { getRecord } from "../records.js";
import { me, session, userNames } from "../session.js";
import { LABELS, empty, formatDateTime, h, link } from "../ui.js";

// Whole sentences per kind of record (nouns have genders in French).
const WORDS = {
  account: {
    created: (who) => t("{who} created the account", { who }),
    deleted: (who) => t("{who} deleted the account", { who }),
    erased: t("The account was erased on request"),
    mergedInto: (who) => t("{who} merged this account into another", { who }),
    unmergedInto: (who) => t("{who} undid a merge: this account is back", { who }),
    merged: (who, n) => tn("{who} merged {n} other account into this one", "{who} merged {n} other accounts into this one", n, { who }),
    unmerged: (who, n) => tn("{who} undid a merge: {n} other account taken out again",
      "{who} undid a merge: {n} other accounts taken out again", n, { who }),
    none: t("No changes recorded for this account yet."),
    online: t("The history of this account is kept on the server: it needs a connection. Try again when you are online."),
    missing: t("No history to show: this account is not on the server yet, or you cannot see it."),
  },
  contact: {
    created: (who) => t("{who} created the contact", { who }),
    deleted: (who) => t("{who} deleted the contact", { who }),
    erased: t("The contact was erased on request"),
    mergedInto: (who) => t("{who} merged this contact into another", { who }),
    unmergedInto: (who) => t("{who} undid a merge: this contact is back", { who }),
    merged: (who, n) => tn("{who} merged {n} other contact into this one", "{who} merged {n} other contacts into this one", n, { who }),
    unmerged: (who, n) => tn("{who} undid a merge: {n} other contact taken out again",
      "{who} undid a merge: {n} other contacts taken out again", n, { who }),
    none: t("No changes recorded for this contact yet."),
    online: t("The history of this contact is kept on the server: it needs a connection. Try again when you are online."),
    missing: t("No history to show: this contact is not on the server yet, or you cannot see it."),
  },
};
const NOUNS = { accounts: WORDS.account, contacts: WORDS.contact };
const FIELDS = {
  name: t("name"), status: t("status"), phone: t("phone"), email: t("email"), website: t("website"),
  street: t("street"), postal_code: t("postal code"), city: t("city"), region: t("region"), country: t("country"),
  lat: t("latitude"), lng: t("longitude"), owner_id: t("owner"), title: t("job title"), account_id: t("account"),
  team_id: t("team"), geo_precision: t("position's precision"),
};
const BY_SOURCE = {
  geocoder: t("by the geocoder"),
  reminder: t("by the reminders"),
  import: t("by an import"),
  merge: t("by a merge"),
  system: t("by fieldcrm"),
  rest: t("on the web"),
};
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
const KEPT = 30;

// Keep this record's history as read, for offline; the oldest kept goes past KEPT.
function keep(id, entries) {
  return write(["meta"], async (s) => {
    const kept = (await s.meta.get("history")) || {};
    kept[id] = { at: Date.now(), entries };
    const ids = Object.keys(kept).sort((a, b) => kept[b].at - kept[a].at);
    for (const old of ids.slice(KEPT)) delete kept[old];
    await s.meta.put(kept, "history");
  });
}

function fieldName(name) {
  return FIELDS[name] || name.replace(/_id$/, "").replace(/_at$/, "").replaceAll("_", " ");
}

function valueText(name, value, names) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "boolean") return value ? t("yes") : t("no");
  if (name.endsWith("_id")) return names.get(value) || t("another record");
  if (typeof value === "string" && DATE_TIME.test(value)) return formatDateTime(value);
  if (name === "status" && LABELS.status[value]) return LABELS.status[value];
  if (name === "stage" && LABELS.stage[value]) return LABELS.stage[value];
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// One sentence per changed field: "changed the phone from “a” to “b”".
function changeText(who, name, change, names) {
  const before = valueText(name, change.old, names);
  const after = valueText(name, change.new, names);
  const field = fieldName(name);
  if (before === null) return t("{who} set the {field} to “{after}”", { who, field, after });
  if (after === null) return t("{who} cleared the {field} (was “{before}”)", { who, field, before });
  return t("{who} changed the {field} from “{before}” to “{after}”", { who, field, before, after });
}

function whoText(entry, myId) {
  if (entry.user_id && entry.user_id === myId) return t("You");
  if (entry.username) return entry.username;
  return entry.user_id ? t("Someone") : "fieldcrm";
}

function whereText(entry, clientId) {
  if (entry.client_id === clientId) return t("from this phone");
  if (entry.source === "sync") return t("from a phone");
  return BY_SOURCE[entry.source] || "";
}

// A merge's entry (SPEC section 9): on a merged record, `merged_into` (new: merged away,
// old: back by an undo); on the survivor, `merged` (the ids), with the values it took.
function mergeLines(entry, who, noun, fields, names) {
  const into = entry.fields.merged_into;
  if (into) return [into.new ? noun.mergedInto(who) : noun.unmergedInto(who)];
  const merged = entry.fields.merged || {};
  const n = (merged.new || merged.old || []).length;
  return [merged.new ? noun.merged(who, n) : noun.unmerged(who, n),
    ...fields.filter(([name]) => name !== "merged").map(([name, change]) => changeText(who, name, change, names))];
}

function entryItem(entry, noun, names, context) {
  const who = whoText(entry, context.myId);
  const fields = Object.entries(entry.fields || {});
  let lines;
  if (entry.op === "create") lines = [noun.created(who)];
  else if (entry.op === "delete") lines = [noun.deleted(who)];
  else if (entry.op === "erase") lines = [noun.erased];
  else if (entry.op === "merge") lines = mergeLines(entry, who, noun, fields, names);
  else if (entry.op === "move" && !fields.length) lines = [t("It moved with its account")];
  else {
    lines = fields.map(([name, change]) => changeText(who, name, change, names));
    if (entry.op === "move") {
      lines.push(fields.some(([n]) => n === "team_id") ? t("It moved to another team") : t("It moved to another person"));
    }
  }
  const where = whereText(entry, context.clientId);
  return h("li", { class: "row", testid: "history-entry", dataset: { seq: String(entry.seq), op: entry.op } },
    h("div", { class: "row-main" },
      lines.map((line) => h("span", { class: "row-title history-line", testid: "history-text" }, line)),
      h("span", { class: "row-sub" }, [where, formatDateTime(entry.at)].filter(Boolean).join(" · "))));
}

export async function historyScreen({ table, id }) {
  const noun = NOUNS[table] || WORDS.account;
  const record = await getRecord(table, id);
  const back = table === "accounts" ? `#/account/${id}`
    : record && record.account_id ? `#/account/${record.account_id}` : "#/accounts";
  const heading = h("h1", {}, record && record.name ? t("History of {name}", { name: record.name }) : t("History"));
  const body = h("div", { testid: "history-body" }, h("p", { class: "hint" }, t("Loading…")));
  const el = h("div", { class: "screen", testid: "history-screen" }, heading, body,
    link(t("Back"), back, "history-back", "button-link"));

  const show = async (list, note) => {
    const [names, clientId] = await Promise.all([userNames(), getMeta("client_id")]);
    const user = me();
    const context = { myId: user ? user.id : null, clientId };
    const entries = list.slice().reverse(); // newest first on a phone
    body.replaceChildren(note || "", entries.length
      ? h("ul", { class: "list timeline", testid: "history-list" },
          entries.map((entry) => entryItem(entry, noun, names, context)))
      : empty(noun.none, "history-empty"));
  };
  const offline = async () => {
    const kept = record && ((await getMeta("history")) || {})[id];
    if (kept) {
      return show(kept.entries, h("p", { class: "hint", testid: "history-kept" },
        t("Offline: the history as read {when}. Newer changes need a connection.", { when: formatDateTime(new Date(kept.at).toISOString()) })));
    }
    body.replaceChildren(empty(
      noun.online,
      "history-offline"));
  };
  (async () => {
    const token = session().token;
    if (!navigator.onLine || !token) {
      await offline();
      return;
    }
    let result;
    try {
      result = await apiFetch(`/api/history/${table}/${id}`, { token, timeoutMs: 10000 });
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      await offline();
      return;
    }
    if (result.status !== 200 || !result.data || !Array.isArray(result.data.entries)) {
      body.replaceChildren(empty(result.status === 404
        ? noun.missing
        : t("The history could not be read. Try again later."), "history-missing"));
      return;
    }
    if (record) await keep(id, result.data.entries); // only what the phone holds
    await show(result.data.entries);
  })();
  return { title: t("History"), el };
}
