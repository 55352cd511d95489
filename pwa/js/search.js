// Finding accounts on the phone, offline: what a rep types (part of a name, a city, a
// street, a postcode, a phone number, a contact's name), blind to case and accents, each
// word matching the start of a word. Pure functions over rows; unit-tested in
// tests/unit/test_pwa_static.py (node) and used by the accounts list and the task form.

import { approximateDistanceM } from "./geodesic.js";

const LIGATURES = { œ: "oe", æ: "ae", ß: "ss" };

// Lower case, no accents or ligatures, words of letters and digits split by single spaces.
export function fold(text) {
  return String(text ?? "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[œæß]/g, (c) => LIGATURES[c])
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

const digits = (text) => String(text ?? "").replace(/\D/g, "");

// Folded names, kept per account object: sorting 10,000 accounts by name folds none again.
const FOLDED = new WeakMap();
function foldedName(account) {
  let name = FOLDED.get(account);
  if (name === undefined) {
    name = fold(account.name);
    FOLDED.set(account, name);
  }
  return name;
}

// One entry per account: its words (" lyon 69003 cours lafayette ... "), its phones'
// digits, the account. In name order, so what a search finds is too.
export function buildIndex(accounts, contacts = []) {
  const people = new Map();
  for (const c of contacts) {
    if (!people.has(c.account_id)) people.set(c.account_id, []);
    people.get(c.account_id).push(c);
  }
  return sortAccounts(accounts).map((a) => {
    const mine = people.get(a.id) || [];
    const words = [a.name, a.city, a.street, a.postal_code, a.region, ...mine.map((c) => c.name)];
    const phones = [a.phone, a.phone_e164, ...mine.map((c) => c.phone)].map(digits).filter(Boolean);
    return { account: a, words: ` ${fold(words.join(" "))} `, phones: ` ${phones.join(" ")} ` };
  });
}

// The index as IndexedDB keeps it and the worker sends it (js/search-worker.js): one
// [id, words, phones] per account, in name order.
export const compactIndex = (index) => index.map((e) => [e.account.id, e.words, e.phones]);

// The index again from its compact form, over the accounts the phone holds now: an entry
// whose account is gone is dropped; an account newer than the index is added at the end
// (the next change of rows builds it again). `byId`: the accounts by id, when the caller
// has the map already (js/records.js rowsById); it is not changed.
export function joinIndex(compact, accounts, contacts = [], byId = null) {
  const rows = byId || new Map(accounts.map((a) => [a.id, a]));
  const index = [];
  for (const [id, words, phones] of compact) {
    const account = rows.get(id);
    if (account) index.push({ account, words, phones });
  }
  if (index.length === accounts.length) return index; // ids are unique: every account is in
  const joined = new Set(index.map((e) => e.account.id));
  return [...index, ...buildIndex(accounts.filter((a) => !joined.has(a.id)), contacts)];
}

const dialledDigits = (query) => (/^[\d\s.+()/-]+$/.test(String(query).trim()) ? digits(query) : "");

// The entries that match every word of `query` (and `status`, when given). A query of
// digits is also looked for in the phone numbers, with or without its leading 0 (a number
// stored as +33 4 78... is found by 04 78...).
export function findEntries(index, query, status = "") {
  const words = fold(query).split(" ").filter(Boolean);
  const dialled = dialledDigits(query);
  const numbers = dialled.length >= 3 ? [dialled, dialled.replace(/^0+/, "")] : [];
  return index.filter((e) => (!status || e.account.status === status)
    && (words.every((w) => e.words.includes(` ${w}`)) || numbers.some((n) => n && e.phones.includes(n))));
}

export function findAccounts(index, query, status = "") {
  return findEntries(index, query, status).map((e) => e.account);
}

// A search as the rep types: when `query` only adds letters to the previous search's (same
// status), what it finds is among what that one found, so only those are looked at.
// `previous`: this function's last answer, or null. Answers {query, status, entries}.
export function searchAsTyped(index, query, status = "", previous = null) {
  const folded = fold(query);
  const phoneQuery = (q) => dialledDigits(q).length >= 3;
  const narrows = previous && previous.index === index && previous.status === status
    && folded.startsWith(previous.folded) && (phoneQuery(previous.query) || !phoneQuery(query));
  const entries = findEntries(narrows ? previous.entries : index, query, status);
  return { index, query, folded, status, entries };
}

export const SORTS = ["name", "nearest", "visited", "owner"];

const compare = (x, y) => (x < y ? -1 : x > y ? 1 : 0);

// A sorted copy. `visited`: the last visit first, never visited last; `nearest` (needs
// `position`, {lat, lng}): accounts without a position last; `owner`: by the owner's name
// (`names`: id -> name), accounts with none last. Ties go by name.
export function sortAccounts(accounts, by = "name", { position = null, names = new Map() } = {}) {
  const key = {
    nearest: (a) => (position && a.lat != null && a.lng != null
      ? approximateDistanceM(position.lat, position.lng, a.lat, a.lng) : Infinity),
    visited: (a) => -(Date.parse(a.last_visit_at) || -Infinity),
    owner: (a) => (names.has(a.owner_id) ? `0${fold(names.get(a.owner_id))}` : "1"),
  }[by] || (() => 0);
  return accounts
    .map((a) => ({ a, k: key(a), n: foldedName(a) }))
    .sort((x, y) => (typeof x.k === "string" ? compare(x.k, y.k) : x.k - y.k || 0) || compare(x.n, y.n))
    .map((x) => x.a);
}
