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

// One entry per account: its words (" lyon 69003 cours lafayette ... "), its phones'
// digits, the account.
export function buildIndex(accounts, contacts = []) {
  const people = new Map();
  for (const c of contacts) {
    if (!people.has(c.account_id)) people.set(c.account_id, []);
    people.get(c.account_id).push(c);
  }
  return accounts.map((a) => {
    const mine = people.get(a.id) || [];
    const words = [a.name, a.city, a.street, a.postal_code, a.region, ...mine.map((c) => c.name)];
    const phones = [a.phone, a.phone_e164, ...mine.map((c) => c.phone)].map(digits).filter(Boolean);
    return { account: a, words: ` ${fold(words.join(" "))} `, phones: ` ${phones.join(" ")} ` };
  });
}

// The accounts whose entry matches every word of `query` (and `status`, when given). A
// query of digits is also looked for in the phone numbers, with or without its leading 0
// (a number stored as +33 4 78... is found by 04 78...).
export function findAccounts(index, query, status = "") {
  const words = fold(query).split(" ").filter(Boolean);
  const dialled = /^[\d\s.+()/-]+$/.test(String(query).trim()) ? digits(query) : "";
  const numbers = dialled.length >= 3 ? [dialled, dialled.replace(/^0+/, "")] : [];
  return index
    .filter((e) => !status || e.account.status === status)
    .filter((e) => words.every((w) => e.words.includes(` ${w}`))
      || numbers.some((n) => n && e.phones.includes(n)))
    .map((e) => e.account);
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
    .map((a) => ({ a, k: key(a), n: fold(a.name) }))
    .sort((x, y) => (typeof x.k === "string" ? compare(x.k, y.k) : x.k - y.k || 0) || compare(x.n, y.n))
    .map((x) => x.a);
}
