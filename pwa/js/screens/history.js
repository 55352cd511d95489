// A record's history (SPEC section 11) in words: "Bruno changed the phone from “0478” to
// “0479”, from his phone · 3 Dec 14:02". It is read from the server (GET /api/history/...);
// the phone keeps the last one read of the records it holds (meta "history", at most
// KEPT, dropped with the record: js/sync.js), shown offline with the day it was read.

import { apiFetch, NetworkError } from "../api.js";
import { getMeta, write } from "../db.js";
import { getRecord } from "../records.js";
import { me, session, userNames } from "../session.js";
import { LABELS, empty, formatDateTime, h, link } from "../ui.js";

const NOUNS = { accounts: "account", contacts: "contact" };
const BY_SOURCE = {
  geocoder: "by the geocoder",
  reminder: "by the reminders",
  import: "by an import",
  merge: "by a merge",
  system: "by fieldcrm",
  rest: "on the web",
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
  return name.replace(/_id$/, "").replace(/_at$/, "").replaceAll("_", " ");
}

function valueText(name, value, names) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (name.endsWith("_id")) return names.get(value) || "another record";
  if (typeof value === "string" && DATE_TIME.test(value)) return formatDateTime(value);
  if (name === "status" && LABELS.status[value]) return LABELS.status[value];
  if (name === "stage" && LABELS.stage[value]) return LABELS.stage[value];
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// One sentence per changed field: "changed the phone from “a” to “b”".
function changeText(name, change, names) {
  const before = valueText(name, change.old, names);
  const after = valueText(name, change.new, names);
  const field = fieldName(name);
  if (before === null) return `set the ${field} to “${after}”`;
  if (after === null) return `cleared the ${field} (was “${before}”)`;
  return `changed the ${field} from “${before}” to “${after}”`;
}

function whoText(entry, myId) {
  if (entry.user_id && entry.user_id === myId) return "You";
  if (entry.username) return entry.username;
  return entry.user_id ? "Someone" : "fieldcrm";
}

function whereText(entry, clientId) {
  if (entry.client_id === clientId) return "from this phone";
  if (entry.source === "sync") return "from a phone";
  return BY_SOURCE[entry.source] || "";
}

// A merge's entry (SPEC section 9): on a merged record, `merged_into` (new: merged away,
// old: back by an undo); on the survivor, `merged` (the ids), with the values it took.
function mergeLines(entry, who, noun, fields, names) {
  const into = entry.fields.merged_into;
  if (into) return [into.new ? `${who} merged this ${noun} into another` : `${who} undid a merge: this ${noun} is back`];
  const merged = entry.fields.merged || {};
  const n = (merged.new || merged.old || []).length;
  const others = `${n} other ${noun}${n === 1 ? "" : "s"}`;
  return [merged.new ? `${who} merged ${others} into this one` : `${who} undid a merge: ${others} taken out again`,
    ...fields.filter(([name]) => name !== "merged").map(([name, change]) => `${who} ${changeText(name, change, names)}`)];
}

function entryItem(entry, noun, names, context) {
  const who = whoText(entry, context.myId);
  const fields = Object.entries(entry.fields || {});
  let lines;
  if (entry.op === "create") lines = [`${who} created the ${noun}`];
  else if (entry.op === "delete") lines = [`${who} deleted the ${noun}`];
  else if (entry.op === "erase") lines = [`The ${noun} was erased on request`];
  else if (entry.op === "merge") lines = mergeLines(entry, who, noun, fields, names);
  else if (entry.op === "move" && !fields.length) lines = [`It moved with its account`];
  else {
    lines = fields.map(([name, change]) => `${who} ${changeText(name, change, names)}`);
    if (entry.op === "move") lines.push(`It moved to another ${fields.some(([n]) => n === "team_id") ? "team" : "person"}`);
  }
  const where = whereText(entry, context.clientId);
  return h("li", { class: "row", testid: "history-entry", dataset: { seq: String(entry.seq), op: entry.op } },
    h("div", { class: "row-main" },
      lines.map((line) => h("span", { class: "row-title history-line", testid: "history-text" }, line)),
      h("span", { class: "row-sub" }, [where, formatDateTime(entry.at)].filter(Boolean).join(" · "))));
}

export async function historyScreen({ table, id }) {
  const noun = NOUNS[table] || "record";
  const record = await getRecord(table, id);
  const back = table === "accounts" ? `#/account/${id}`
    : record && record.account_id ? `#/account/${record.account_id}` : "#/accounts";
  const heading = h("h1", {}, record && record.name ? `History of ${record.name}` : "History");
  const body = h("div", { testid: "history-body" }, h("p", { class: "hint" }, "Loading…"));
  const el = h("div", { class: "screen", testid: "history-screen" }, heading, body,
    link("Back", back, "history-back", "button-link"));

  const show = async (list, note) => {
    const [names, clientId] = await Promise.all([userNames(), getMeta("client_id")]);
    const user = me();
    const context = { myId: user ? user.id : null, clientId };
    const entries = list.slice().reverse(); // newest first on a phone
    body.replaceChildren(note || "", entries.length
      ? h("ul", { class: "list timeline", testid: "history-list" },
          entries.map((entry) => entryItem(entry, noun, names, context)))
      : empty(`No changes recorded for this ${noun} yet.`, "history-empty"));
  };
  const offline = async () => {
    const kept = record && ((await getMeta("history")) || {})[id];
    if (kept) {
      return show(kept.entries, h("p", { class: "hint", testid: "history-kept" },
        `Offline: the history as read ${formatDateTime(new Date(kept.at).toISOString())}. Newer changes need a connection.`));
    }
    body.replaceChildren(empty(
      `The history of this ${noun} is kept on the server: it needs a connection. Try again when you are online.`,
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
        ? `No history to show: this ${noun} is not on the server yet, or you cannot see it.`
        : "The history could not be read. Try again later.", "history-missing"));
      return;
    }
    if (record) await keep(id, result.data.entries); // only what the phone holds
    await show(result.data.entries);
  })();
  return { title: "History", el };
}
