// Storing a sync answer (SPEC section 4): the outbox acknowledged, refused writes kept, the
// page of changes and its cursor, all in one transaction. Used by js/sync.js on the page
// and by js/sync-worker.js, which pulls a first sync's pages off the main thread: this
// module imports nothing that needs a window or the app's language.

import { TABLES, packKeys, request, unpackAllIn, write } from "./db.js";
import { observe } from "./hlc.js";
import { baseOf, overlay, pendingFor } from "./records.js";

const SLICE = 250; // rows stored between two turns of the event loop (applyResponse)
const PACK = 100; // rows a pack holds (js/db.js): a first sync's rows are stored packed
const CHILD_TABLES = ["contacts", "visits", "notes", "tasks", "deals", "attachments"];

export class SignedOut extends Error {
  name = "SignedOut";
}

// Store one answer in one transaction: acknowledged writes leave the outbox, rejected
// ones are kept for the user (js/rejections.js: this phone's copy stays until the
// server's `rejections` row for the write arrives), the page of changes and its cursor
// land together. `refused`: the words for a refusal that came without any, in the app's
// language; `token`: store nothing unless the phone is still signed in with it. Answers
// {acked, changed, merged, packed: rows stored in packs}.
export async function applyResponse(data, sentCursor, { refused, token } = {}) {
  return write([...TABLES, "outbox", "meta", "drafts", "blobs", "packs"], async (s, tx) => {
    const ack = data.ack || { last_mid: 0, results: [] };
    const lastMid = Number(ack.last_mid) || 0;
    // Asked for at once, and writes below without waiting (docs/pwa.md): each await is a
    // round trip to IndexedDB's thread; the transaction runs requests in order, a failure aborts it.
    const [signedIn, acked, stored, clientId, kept, erasedBefore, mergedBefore, ongoing, histories,
      drafts, clock] = await Promise.all([
      token === undefined ? token : s.meta.get("token"),
      lastMid > 0 ? s.outbox.index("mid").getAll(IDBKeyRange.upperBound(lastMid)) : [],
      s.outbox.getAll(),
      s.meta.get("client_id"),
      s.meta.get("rejected"),
      s.meta.get("erased"),
      s.meta.get("merged"),
      s.meta.get("reset"),
      s.meta.get("history"),
      s.drafts.getAll(),
      s.meta.get("hlc"),
    ]);
    // A pull that outlived its sign-in (the phone emptied meanwhile) stores nothing.
    if (signedIn !== token) throw new SignedOut();
    const touched = new Set();
    const refresh = new Map();
    const merged = new Set(); // of refresh's keys: merged, not rejected

    const sent = new Map(acked.map((e) => [e.mid, e]));
    for (const e of acked) s.outbox.raw.delete(e.key);
    // The outbox once the acknowledged writes are gone; read again once a merge moved them.
    let outbox = stored.filter((e) => !sent.has(e.mid));

    let rejected = kept || [];
    const erased = erasedBefore || {}; // ids erased on request (SPEC 12)
    let erasedNow = 0;
    const merges = { map: mergedBefore || {}, now: [] };
    for (const r of ack.results || []) {
      const e = sent.get(r.mid);
      if (!e) continue;
      // Rule 13: the write went to the survivor of a merge; what this phone holds of the
      // merged-away record follows it there.
      if (r.redirected_to && r.status !== "rejected") {
        await repoint(s, e.table, e.id, r.redirected_to, merges);
        outbox = null;
      }
      // A merged write lost some fields. If the row changed, the pull brings it; if every
      // field lost, nothing comes (the pull had brought the winner before this write went
      // out, and it was shown under the pending value): rebuilt below, or the lost value
      // would stay on this phone. The value itself is kept in a conflicts row.
      if (r.status === "merged" && !refresh.has(`${e.table}/${e.id}`)) {
        refresh.set(`${e.table}/${e.id}`, e);
        merged.add(`${e.table}/${e.id}`);
      }
      if (r.status !== "rejected") continue;
      if (r.error && r.error.error === "erased") {
        // A write to a record erased on request: kept nowhere, not even here.
        erased[e.id] = erased[e.id] || Date.now();
        erasedNow = Date.now();
        refresh.set(`${e.table}/${e.id}`, e);
        merged.delete(`${e.table}/${e.id}`);
        continue;
      }
      if (rejected.some((x) => x.mid === r.mid)) continue;
      rejected.push({
        mid: e.mid,
        table: e.table,
        id: e.id,
        op: e.op,
        fields: e.fields,
        hlc: e.hlc,
        error: r.error || { error: "rejected", detail: refused },
        at: Date.now(),
        about: await aboutWrite(s, e),
      });
      refresh.set(`${e.table}/${e.id}`, e);
      merged.delete(`${e.table}/${e.id}`);
    }
    if ((ack.results || []).length) s.meta.raw.put(ack.results.slice(-50), "last_results");

    const reset = await resetState(s, tx, data, sentCursor, ongoing);
    const left = []; // ids of rows deleted or evicted

    // Puts and deletes are not awaited one by one; the outbox read above serves them (read
    // again after a repoint).
    let unsent = null;
    // A reset into an empty phone stamps nothing: there is nothing to sweep after it.
    const stamp = reset && !reset.fresh ? reset.epoch : null;
    // Every SLICE requests, a wait for the previous slice's last: the app gets a turn
    // while the slice just asked for keeps IndexedDB busy.
    let asked = 0;
    let sliceEnd = null;
    const slice = async (req) => {
      if ((asked += 1) % SLICE !== 0) return;
      const previous = sliceEnd;
      sliceEnd = req;
      if (previous) await request(previous);
    };
    // A first sync into an empty phone packs its rows (js/db.js), but those its stores hold.
    const packing = reset && reset.fresh ? await packable(s, data.changes || []) : null;
    const packed = new Map(); // table -> rows not yet in a pack
    const packKey = packing ? await packKeys(s) : null;
    let packedRows = 0;
    const pack = async (table) => {
      const rows = packed.get(table);
      packed.delete(table);
      if (!rows || !rows.length) return;
      const key = packKey();
      packedRows += rows.length;
      await slice(s.packs.add({ key, table, rows }));
    };
    const packAll = async () => {
      for (const table of [...packed.keys()]) await pack(table);
    };
    for (const change of data.changes || []) {
      if (!TABLES.includes(change.table)) continue; // a newer server's table
      touched.add(`${change.table}/${change.id}`);
      if (change.op === "put" && change.row) {
        delete merges.map[change.id]; // back: its merge was undone
        if (!unsent) unsent = groupPending(outbox || (await s.outbox.getAll()));
        const pending = unsent.get(`${change.table}/${change.id}`) || [];
        const alone = !packing || !packing.has(change.table) || packing.get(change.table).has(change.id);
        if (!alone && !pending.length) {
          const rows = packed.get(change.table) || [];
          rows.push(overlay(change.row, change.seq, []));
          packed.set(change.table, rows);
          if (rows.length >= PACK) await pack(change.table);
          continue;
        }
        const row = overlay(change.row, change.seq, pending);
        if (stamp) row._epoch = stamp;
        if (change.table === "rejections") {
          // The server's row replaces this phone's copy of the write; what the copy knew
          // of it (the account's name, when it was written) stays with the row.
          const mine = row.client_id === clientId;
          const copy = mine ? rejected.find((x) => x.mid === row.mid) : null;
          const before = await s.rejections.get(change.id);
          const about = (before && before._about) || (copy && aboutOf(copy));
          if (about) row._about = about;
          if (copy) rejected = rejected.filter((x) => x !== copy);
        }
        await slice(s[change.table].raw.put(row));
      } else if (change.op === "delete") {
        await packAll(); // a row packed above must be in its pack to be taken out of it
        s[change.table].delete(change.id); // and out of its packs (js/db.js)
        left.push(change.id);
        if (change.merged_into) {
          await repoint(s, change.table, change.id, change.merged_into, merges);
          unsent = outbox = null;
        }
      } else if (change.op === "evict") {
        await packAll();
        left.push(...(await evict(s, change.table, change.id)));
        if (change.erased) erased[change.id] = erasedNow = Date.now();
      }
    }
    await packAll();
    // The history kept of a record the phone no longer holds goes with it.
    if (histories && left.some((id) => histories[id])) {
      for (const id of left) delete histories[id];
      s.meta.raw.put(histories, "history");
    }
    // Nothing of an erased record stays: this phone's copies of refused writes, drafts.
    const gone = (x) => erased[x.id] || erased[x.account_id] || erased[x.record_id] ||
      erased[(x.about || {}).account_id] || erased[(x.fields || {}).account_id];
    rejected = rejected.filter((x) => !gone(x));
    for (const d of drafts) if (gone(d)) s.drafts.raw.delete(d.key);
    s.meta.raw.put(erased, "erased");
    if (erasedNow) {
      // Nor its words in the search index kept here (js/search-worker.js builds it again).
      await s.meta.delete("search_index");
      // Nor its photos and voice notes kept here (thumbnails included): bytes no row names.
      const named = new Set((await s.attachments.getAll()).map((r) => r.sha256));
      for (const b of await s.blobs.getAll()) if (!named.has(b.sha256)) await s.blobs.delete(b.sha256);
    }

    // A rejected or merged write's optimistic fields go: back to the server's row plus
    // what is still pending. A row never seen by the server (a rejected create) disappears.
    for (const [key, e] of refresh) {
      if (touched.has(key)) continue;
      const row = await s[e.table].get(e.id);
      if (!row || (!row._base && merged.has(key))) continue;
      const pending = await pendingFor(s, e.table, e.id);
      const rebuilt = overlay(baseOf(row), row._seq ?? null, row._base ? pending : []);
      if (rebuilt) await s[e.table].put({ ...rebuilt, _epoch: row._epoch });
      else await s[e.table].delete(e.id);
    }

    s.meta.raw.put(rejected, "rejected");
    s.meta.raw.put(merges.map, "merged");
    if (data.cursor !== undefined) s.meta.raw.put(data.cursor, "cursor");
    if (reset) {
      if (data.has_more) {
        s.meta.raw.put({ ...reset, cursor: data.cursor }, "reset");
      } else {
        if (!reset.fresh) await sweep(s, reset.epoch);
        s.meta.raw.delete("reset");
      }
    }
    s.meta.raw.put(observe(clock, data.hlc_max), "hlc");
    if (typeof data.server_time === "number") {
      s.meta.raw.put(data.server_time - Date.now(), "server_offset_ms");
    }
    return {
      acked: acked.length,
      packed: packedRows,
      changed: acked.length + touched.size + refresh.size + (reset && !data.has_more ? 1 : 0),
      merged: merges.now,
    };
  });
}

// By table (not `rejections`), the ids its own store holds (few, on an empty phone).
async function packable(s, changes) {
  const tables = [...new Set(changes.map((c) => c.table))].filter((t) => TABLES.includes(t) && t !== "rejections");
  const keys = await Promise.all(tables.map((t) => s[t].ownKeys()));
  return new Map(tables.map((t, i) => [t, new Set(keys[i])]));
}

// Outbox entries by "table/id", each list in mid order (as pendingFor answers).
function groupPending(entries) {
  const byRow = new Map();
  for (const e of entries.sort((a, b) => a.mid - b.mid)) {
    const key = `${e.table}/${e.id}`;
    if (!byRow.has(key)) byRow.set(key, []);
    byRow.get(key).push(e);
  }
  return byRow;
}

// Rule 13: `fromId` was merged into `toId`. What this phone holds of it follows: its
// unsent writes (sent to the survivor, as the server would redirect them), the rows that
// hang off it, and screens that show it (js/router.js reads meta "merged").
async function repoint(s, table, fromId, toId, merges) {
  merges.map[fromId] = toId;
  merges.now.push(fromId);
  const ids = Object.keys(merges.map);
  if (ids.length > 500) delete merges.map[ids[0]];
  const moved = await s.outbox.index("row").getAll([table, fromId]);
  for (const e of moved) await s.outbox.put({ ...e, id: toId });
  if (table === "accounts") {
    for (const e of await s.outbox.getAll()) {
      if (e.fields && e.fields.account_id === fromId) {
        await s.outbox.put({ ...e, fields: { ...e.fields, account_id: toId } });
      }
    }
    for (const child of [...CHILD_TABLES, "conflicts"]) {
      for (const row of await s[child].index("account_id").getAll(fromId)) {
        // A row that is its own base (`_base: true`) takes its base along as it is.
        const base = row._base && row._base !== true && { ...row._base, account_id: toId };
        await s[child].put({ ...row, account_id: toId, ...(base ? { _base: base } : {}) });
      }
    }
  }
  await s[table].delete(fromId);
  const survivor = await s[table].get(toId);
  if (survivor && moved.length) {
    const row = overlay(baseOf(survivor), survivor._seq ?? null, await pendingFor(s, table, toId));
    if (row) await s[table].put({ ...row, _epoch: survivor._epoch });
  }
}

// What the refused write was about, read before its row is rebuilt: the account's name
// may be gone from this phone by the time its user reads the write.
async function aboutWrite(s, e) {
  const row = await s[e.table].get(e.id);
  const fields = e.fields || {};
  const accountId =
    e.table === "accounts" ? e.id : fields.account_id || (row && row.account_id) || null;
  const account = accountId ? await s.accounts.get(accountId) : null;
  const about = { account_id: accountId };
  const name = (account && account.name) || (e.table === "accounts" ? fields.name : null);
  if (name) about.account_name = name;
  const own = row && e.table !== "accounts" ? row.title || row.name : null;
  if (own && !fields.title && !fields.name) about.record_name = own;
  if (row && row._base) about.existed = true;
  return about;
}

function aboutOf(copy) {
  const about = { ...(copy.about || {}) };
  if (Array.isArray(copy.hlc)) about.written_at = copy.hlc[0];
  if (copy.fixed_at) about.fixed_at = copy.fixed_at;
  return about;
}

// A reset pages the whole scope; rows it sends are stamped with its epoch so the last
// page can drop the rest (not a first sync's: an empty phone has nothing to drop). A
// reset continues while we send the cursor its last page gave; a reset answer to any
// other cursor starts over.
// `ongoing`: meta "reset" as the transaction began.
async function resetState(s, tx, data, sentCursor, ongoing) {
  if (ongoing && ongoing.cursor === sentCursor) return ongoing;
  if (data.reset || sentCursor === null) {
    // A reset into an empty phone: reading every row back at its end, to find none to
    // sweep, took a big territory's phone seconds. Rows written here meanwhile are the
    // phone's own.
    const counts = await Promise.all([...TABLES, "outbox"].map((name) => s[name].count()));
    const fresh = counts.every((n) => n === 0);
    if (data.reset) {
      // A reset that sweeps stamps rows one by one: packed rows are unpacked first.
      if (!fresh) await unpackAllIn(s, tx);
      return { epoch: crypto.randomUUID(), cursor: null, fresh };
    }
    // A first sync (no cursor) into an empty phone is stored as such a reset is: packed,
    // nothing stamped, nothing swept.
    if (fresh) return { epoch: crypto.randomUUID(), cursor: null, fresh };
  }
  if (ongoing) s.meta.raw.delete("reset"); // our cursor moved on some other way
  return null;
}

// After the last page of a reset: every row the reset did not send goes, except rows
// with writes still in the outbox. Those stay for their writes, but the server's row they
// were built on is gone from this phone's scope: they keep only what is pending, so that
// if the server refuses the writes (the record was deleted, say) the row goes with them
// instead of coming back as it once was. A write the server takes brings its row back.
async function sweep(s, epoch) {
  await s.meta.delete("history"); // kept of rows that may be swept now
  const pending = new Set((await s.outbox.getAll()).map((e) => `${e.table}/${e.id}`));
  for (const table of TABLES) {
    for (const row of await s[table].getAll()) {
      if (row._epoch === epoch) continue;
      if (!pending.has(`${table}/${row.id}`)) await s[table].delete(row.id);
      else if (row._base) await s[table].put({ ...row, _base: null, _seq: null });
    }
  }
}

// An evicted row leaves with what hangs off it (SPEC 4.8).
async function evict(s, table, id) {
  await s[table].delete(id);
  const gone = [id];
  if (table === "accounts") {
    for (const child of CHILD_TABLES) {
      for (const key of await s[child].index("account_id").getAllKeys(id)) {
        await s[child].delete(key);
        gone.push(key);
      }
    }
    for (const key of await s.conflicts.index("account_id").getAllKeys(id)) {
      await s.conflicts.delete(key);
    }
  }
  for (const recordId of gone) {
    for (const key of await s.conflicts.index("record_id").getAllKeys(recordId)) {
      await s.conflicts.delete(key);
    }
  }
  return gone;
}
