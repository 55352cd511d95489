// Local records. A row in a table store is the optimistic state the views show: the
// server's last row (`_base`, at `_seq`) with this device's pending writes applied on top.
// A local write puts the row and its outbox entry in one transaction; sending is sync.js's job.

import { TABLES, read, write, writeCount } from "./db.js";
import { tick } from "./hlc.js";
import { emit, on } from "./events.js";
import { keptByServer } from "./rejections.js";

// The server's row a local row was built on, or null (never seen by the server). A row with
// nothing pending keeps one copy: `_base: true` means the row itself, less this phone's own
// `_` fields (a first sync of a big territory stores half as much).
export function baseOf(row) {
  if (!row || !row._base) return null;
  if (row._base !== true) return row._base;
  const base = {};
  for (const [key, value] of Object.entries(row)) if (!key.startsWith("_")) base[key] = value;
  return base;
}

// Build the local row from the server's row and the pending outbox entries (mid order).
// Answers null when there is nothing to show.
export function overlay(base, seq, pending) {
  if (base && !pending.length) return { ...base, _base: true, _seq: seq ?? null };
  let row = base ? { ...base } : null;
  let deleted = false;
  for (const entry of pending) {
    if (entry.op === "delete") deleted = true;
    else row = { ...(row || { id: entry.id }), ...entry.fields, id: entry.id };
  }
  if (!row) return null;
  row._base = base || null;
  row._seq = seq ?? null;
  if (deleted) row._deleted = true;
  else delete row._deleted;
  return row;
}

export async function pendingFor(stores, table, id) {
  const entries = await stores.outbox.index("row").getAll([table, id]);
  return entries.sort((a, b) => a.mid - b.mid);
}

// Queue writes: [{table, id, op: "upsert"|"delete", fields, base_seq}], all in one
// transaction with their outbox entries, each with the next mid and a fresh HLC; base_seq
// defaults to the seq of the row as last pulled. `drafts`: keys of the form drafts these
// writes save, deleted in the same transaction (saved and still a draft, or neither,
// whatever happens to the page). `rejected`: mids of this phone's copies of refused writes
// (js/rejections.js) these writes send again: a copy the server keeps no row of goes, one
// whose row has not arrived yet is marked `fixed_at`.
// pwa/sw.js repeats this for a notification's Done / Snooze (writeTaskChange): keep in step.
// `blobs`: photos and voice notes these writes' attachments name (js/attachments.js), kept
// in the same transaction.
export async function saveWrites(writes, { drafts = [], rejected = [], blobs = [] } = {}) {
  const tables = [...new Set(writes.map((w) => w.table))];
  for (const t of tables) if (!TABLES.includes(t)) throw new Error(`unknown table ${t}`);
  const stores = [...tables, "outbox", "meta", ...(drafts.length ? ["drafts"] : []),
    ...(blobs.length ? ["blobs"] : [])];
  const entries = await write(stores, async (s) => {
    let mid = (await s.meta.get("next_mid")) || 1;
    let clock = await s.meta.get("hlc");
    const queued = [];
    for (const w of writes) {
      clock = tick(clock);
      const row = await s[w.table].get(w.id);
      const entry = {
        mid,
        table: w.table,
        id: w.id,
        op: w.op,
        fields: w.op === "delete" ? {} : { ...w.fields },
        base_seq: w.base_seq !== undefined ? w.base_seq : row ? row._seq ?? null : null,
        hlc: clock,
      };
      mid += 1;
      await s.outbox.add(entry);
      queued.push(entry);
      if (w.op === "delete") {
        if (row) await s[w.table].put({ ...row, _base: baseOf(row), _deleted: true });
      } else {
        const next = row
          ? { ...row, ...entry.fields, _base: baseOf(row) }
          : { id: w.id, ...entry.fields, _base: null, _seq: null };
        await s[w.table].put(next);
      }
    }
    await s.meta.put(mid, "next_mid");
    await s.meta.put(clock, "hlc");
    for (const key of drafts) await s.drafts.delete(key);
    for (const blob of blobs) await s.blobs.put(blob);
    if (rejected.length) {
      const copies = [];
      for (const copy of (await s.meta.get("rejected")) || []) {
        if (!rejected.includes(copy.mid)) copies.push(copy);
        else if (keptByServer(copy)) copies.push({ ...copy, fixed_at: Date.now() });
      }
      await s.meta.put(copies, "rejected");
    }
    return queued;
  });
  emit("data", { local: true });
  emit("outbox", entries);
  return entries;
}

export const upsert = (table, id, fields) => saveWrites([{ table, id, op: "upsert", fields }]);
export const remove = (table, id, options) => saveWrites([{ table, id, op: "delete" }], options);

export function newId() {
  return crypto.randomUUID();
}

export const visible = (row) => row && !row._deleted;

// Queries for the screens. The data set is one team's: reading a store whole is fine.

// A store's rows are kept as last read while nothing in this page wrote to it (db.js
// writeCount) and no other tab or the service worker said it did: a big territory's
// screens open without reading 10,000 rows again. Callers get their own array (the rows
// are shared: never change one in place).
const kept = new Map();
on("data", (d) => {
  if (d && d.remote) kept.clear();
});

export async function allRows(table) {
  return (await keptRows(table)).slice();
}

// The same rows as allRows, without the copy: the very array kept, the same one until the
// store changes (a screen keeps what it computed from it, js/screens/today.js). Never
// change it nor its rows.
export async function keptRows(table) {
  const stamp = writeCount(table);
  let hit = kept.get(table);
  if (!hit || hit.stamp !== stamp) {
    hit = { stamp, rows: read([table], (s) => s[table].getAll()).then((rows) => rows.filter(visible)) };
    kept.set(table, hit);
    const mine = hit;
    hit.rows.catch(() => kept.get(table) === mine && kept.delete(table));
  }
  return hit.rows;
}

// The rows of a keptRows() array by id, made once per array: Today's names, Nearby's
// unsent edits and the accounts' search index (js/account-index.js) share one map of a
// big territory's 10,000 accounts. Never change it.
const byIds = new WeakMap();
export function rowsById(rows) {
  let map = byIds.get(rows);
  if (!map) byIds.set(rows, (map = new Map(rows.map((row) => [row.id, row]))));
  return map;
}

export async function getRecord(table, id) {
  const row = await read([table], (s) => s[table].get(id));
  return visible(row) ? row : null;
}

export async function rowsOfAccount(table, accountId) {
  const rows = await read([table], (s) => s[table].index("account_id").getAll(accountId));
  return rows.filter(visible);
}

export async function pendingCount() {
  return read(["outbox"], (s) => s.outbox.count());
}

export async function pendingKeys() {
  // "table/id" of every row with an unsent write, to mark it in lists.
  const entries = await read(["outbox"], (s) => s.outbox.getAll());
  return new Set(entries.map((e) => `${e.table}/${e.id}`));
}
