// The sync client for SPEC section 4: push the outbox, pull changes, one round trip at a
// time. Network calls happen between IndexedDB transactions, never inside one: a batch is
// read in one transaction, sent, and the whole answer is stored in another.

import { t } from "./i18n.js";
import { apiFetch, errorDetail, NetworkError } from "./api.js";
import { TABLES, read, request, write } from "./db.js";
import { emit, on } from "./events.js";
import { observe } from "./hlc.js";
import { baseOf, overlay, pendingFor } from "./records.js";
import { countUnresolved } from "./rejections.js";
import { expireSession, refreshUsers, session } from "./session.js";
import { heldMessage } from "./status.js";

const SYNC_PATH = "/api/sync/v1";
const PROTOCOL = 1;
const PULL_LIMIT = 2000; // the server's most (sync/protocol.py): fewer round trips
const MAX_MUTATIONS = 500; // the server takes 1,000
const MAX_BODY_CHARS = 1_000_000; // at most 3 bytes a char in UTF-8: well under 4 MiB
const TIMEOUT_MS = 30_000;
const INTERVAL_MS = 30_000;
const BACKOFF_BASE_MS = 2_000;
const BACKOFF_MAX_MS = 5 * 60_000;
const MAX_ROUNDS = 10_000;
const SLICE = 250; // rows stored between two turns of the app's (applyResponse)
const CHILD_TABLES = ["contacts", "visits", "notes", "tasks", "deals", "attachments"];

// state: idle | offline | syncing | synced | retrying | error | signed-out | upgrade | blocked
// | limited (the server's write rate: retried at `retryAt`) | quota (the team's storage is full)
let status = { state: "idle", pending: 0, rejected: 0, lastSyncAt: null, message: "", retryAt: null };
let running = null;
let again = false;
let failures = 0;
let retryTimer = null;
let soonTimer = null;
let batchLimit = MAX_MUTATIONS;

export function currentStatus() {
  return status;
}

async function setStatus(state, message = "", retryAt = null) {
  const [pending, rows, local, clientId, lastSyncAt] = await read(
    ["outbox", "rejections", "meta"],
    (s) =>
      Promise.all([
        s.outbox.count(),
        s.rejections.getAll(),
        s.meta.get("rejected"),
        s.meta.get("client_id"),
        s.meta.get("last_sync_at"),
      ]),
  );
  status = {
    state: state || status.state,
    message: state ? message : status.message,
    pending,
    rejected: countUnresolved(rows, local, clientId),
    lastSyncAt: lastSyncAt || null,
    retryAt: state ? retryAt : status.retryAt,
  };
  emit("sync", status);
  return status;
}

// Recount pending and rejected without changing the state (after a local write).
export function refreshStatus() {
  let state = null;
  if (!session().token) return setStatus("signed-out", status.state === "signed-out" ? status.message : "");
  if (!navigator.onLine) state = "offline";
  else if (status.state === "offline" || status.state === "signed-out") state = "idle";
  return setStatus(state);
}

// Run a sync now; resolves with the status when done, never rejects. A call while one is
// running queues one more pass, so writes made meanwhile go out too.
export function syncNow() {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    try {
      do {
        again = false;
        await runExclusive();
      } while (again);
    } finally {
      running = null;
    }
    return status;
  })();
  return running;
}

// Tabs of the app share one outbox: only one of them talks to the server at a time.
function runExclusive() {
  if (navigator.locks) return navigator.locks.request("fieldcrm-sync", () => runOnce());
  return runOnce();
}

class RetryLater extends Error {}

async function runOnce() {
  if (!session().token) {
    await setStatus("signed-out", status.state === "signed-out" ? status.message : "");
    return;
  }
  if (!navigator.onLine) {
    await setStatus("offline");
    return;
  }
  clearRetry();
  await setStatus("syncing");
  try {
    const outcome = await exchange();
    if (outcome !== "done") return;
    failures = 0;
    await write(["meta"], (s) => s.meta.put(Date.now(), "last_sync_at"));
    await setStatus("synced");
    refreshUsers().catch(() => {});
    uploadSoon().catch((err) => console.warn("fieldcrm upload failed", err));
  } catch (err) {
    if (err instanceof NetworkError || err instanceof RetryLater) {
      failures += 1;
      scheduleRetry();
      await setStatus(navigator.onLine ? "retrying" : "offline", err.message);
    } else {
      console.error("fieldcrm sync failed", err);
      failures += 1;
      scheduleRetry();
      await setStatus("error", String((err && err.message) || err));
    }
  } finally {
    flushData();
  }
}

// Round trips until the outbox is sent and the pull has no more pages.
// Answers "done", or "stopped" when the status was already set to why.
async function exchange() {
  let fromMid = 0;
  let ahead = null; // the next page's request, sent while this page is stored
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const sent = ahead || send(await readBatch(fromMid));
    ahead = null;
    const { batch, result } = await sent;
    const data = result.data || {};
    if (result.status >= 200 && result.status < 300) {
      // A pull with nothing to send: the next page is asked for while this one is stored
      // (a first sync is dozens of pages). Its answer is stored after this one, or dropped
      // with it if storing this one fails.
      if (data.has_more && batch.mutations.length === 0 && !batch.more) {
        ahead = send({ ...batch, cursor: data.cursor ?? null });
        ahead.catch(() => {}); // its failure is met when it is awaited, next round
      }
      const stored = performance.now();
      const acked = await applyResponse(data, batch.cursor);
      // How long storing the answer took, for bench/pwa.py and the devtools' timeline.
      performance.measure("fieldcrm:sync-store", { start: stored, detail: (data.changes || []).length });
      fromMid = 0;
      batchLimit = MAX_MUTATIONS;
      // Go on while the pull has pages, or the outbox had more than one request could
      // carry and the server took some (a server taking none must not make us spin).
      if (!data.has_more && !(batch.more && acked > 0)) return "done";
      continue;
    }
    if (result.status === 409 && data.error === "mid_gap") {
      // Never renumber: mids already sent may have been applied. Resend from `expected`.
      const expected = Number(data.expected);
      console.warn(`fieldcrm sync: mid_gap, server expects mid ${expected}`, data);
      if (Number.isInteger(expected) && expected !== fromMid && (await hasMid(expected))) {
        fromMid = expected;
        continue;
      }
      scheduleRetry();
      await setStatus("blocked", t("Sync is stuck: the server expects change #{mid}.", { mid: expected }));
      return "stopped";
    }
    if (result.status === 401) {
      await expireSession();
      await setStatus("signed-out", t("Sign in again to sync. Your unsent changes are kept."));
      return "stopped";
    }
    if (result.status === 426) {
      await setStatus("upgrade", errorDetail(result, t("This version of the app is too old.")));
      emit("upgrade-required");
      return "stopped";
    }
    if (result.status === 429 || (result.status === 413 && data.error === "quota_exceeded")) {
      // A limit of the server's (docs/limits.md): nothing of the request was applied and
      // its mids are free, so the outbox stays as it is and goes again, whole, later.
      failures += 1;
      const limited = result.status === 429;
      const delay = scheduleRetry(limited ? (result.retryAfterS ?? 60) * 1000 : 0);
      const state = limited ? "limited" : "quota";
      const retryAt = Date.now() + delay;
      const pending = await read(["outbox"], (s) => s.outbox.count());
      await setStatus(state, heldMessage(state, pending, retryAt), retryAt);
      return "stopped";
    }
    if (result.status === 413 && batchLimit > 1) {
      batchLimit = Math.max(1, Math.floor(batch.mutations.length / 2));
      continue;
    }
    if (result.status >= 500 || result.status === 408) {
      throw new RetryLater(t("The server answered {status}.", { status: result.status }));
    }
    failures += 1;
    scheduleRetry();
    await setStatus("error", errorDetail(result, t("Sync refused ({status})", { status: result.status })));
    return "stopped";
  }
  return "done";
}

// One request: the batch's writes and the pull from its cursor. Answers {batch, result}.
async function send(batch) {
  const body = {
    protocol: PROTOCOL,
    client_id: batch.clientId,
    cursor: batch.cursor,
    pull_limit: PULL_LIMIT,
    mutations: batch.mutations,
    device: { ...batch.device, app_version: await appVersion(), platform: platform() },
  };
  const result = await apiFetch(SYNC_PATH, {
    method: "POST",
    body,
    token: session().token,
    timeoutMs: TIMEOUT_MS,
  });
  return { batch, result };
}

async function hasMid(mid) {
  return read(["outbox"], async (s) => (await s.outbox.index("mid").count(mid)) > 0);
}

// The next request's mutations: outbox entries from `fromMid` on, in mid order, within
// the count and size limits.
async function readBatch(fromMid) {
  return read(["outbox", "meta"], async (s) => {
    const [clientId, cursor, total] = await Promise.all([
      s.meta.get("client_id"),
      s.meta.get("cursor"),
      s.outbox.count(),
    ]);
    const range = IDBKeyRange.lowerBound(fromMid || 0);
    // One more than a request carries: the first write left for later is the oldest one
    // still on the phone once this request's writes are counted as sent.
    const entries = await s.outbox.index("mid").getAll(range, batchLimit + 1);
    const mutations = [];
    let size = 0;
    for (const e of entries.slice(0, batchLimit)) {
      const mutation = {
        mid: e.mid,
        table: e.table,
        id: e.id,
        op: e.op,
        fields: e.fields || {},
        base_seq: e.base_seq ?? null,
        hlc: e.hlc,
      };
      size += JSON.stringify(mutation).length;
      if (mutations.length > 0 && size > MAX_BODY_CHARS) break;
      mutations.push(mutation);
    }
    const next = entries[mutations.length];
    const device = {
      pending: Math.max(0, total - mutations.length),
      oldest_pending_at: next ? new Date(next.hlc[0]).toISOString() : null,
    };
    return { clientId, cursor: cursor ?? null, mutations, more: total > mutations.length, device };
  });
}

// The device report's app version: the service worker's (a hash of the shell it serves,
// pwa/tools/stamp_sw.py), asked once per page; null without a worker.
let versionAsked = null;
function appVersion() {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (!worker) return Promise.resolve(null);
  if (!versionAsked) {
    versionAsked = new Promise((resolve) => {
      const channel = new MessageChannel();
      const timer = setTimeout(() => resolve(null), 1000);
      channel.port1.onmessage = (event) => {
        clearTimeout(timer);
        resolve(typeof event.data === "string" ? event.data : null);
      };
      worker.postMessage({ type: "VERSION" }, [channel.port2]);
    });
  }
  return versionAsked;
}

// A short name of the platform ("Android", "Windows", "iPhone"), as the browser gives it.
function platform() {
  const name = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform;
  return name ? String(name).slice(0, 64) : null;
}

// Store one answer in one transaction: acknowledged writes leave the outbox, rejected
// ones are kept for the user (js/rejections.js: this phone's copy stays until the
// server's `rejections` row for the write arrives), the page of changes and its cursor
// land together.
async function applyResponse(data, sentCursor) {
  const outcome = await write([...TABLES, "outbox", "meta", "drafts", "blobs"], async (s) => {
    const touched = new Set();
    const refresh = new Map();
    const merged = new Set(); // of refresh's keys: merged, not rejected

    const ack = data.ack || { last_mid: 0, results: [] };
    const lastMid = Number(ack.last_mid) || 0;
    const acked = lastMid > 0 ? await s.outbox.index("mid").getAll(IDBKeyRange.upperBound(lastMid)) : [];
    const sent = new Map(acked.map((e) => [e.mid, e]));
    for (const e of acked) await s.outbox.delete(e.key);

    const clientId = await s.meta.get("client_id");
    let rejected = (await s.meta.get("rejected")) || [];
    const erased = (await s.meta.get("erased")) || {}; // ids erased on request (SPEC 12)
    let erasedNow = 0;
    const merges = { map: (await s.meta.get("merged")) || {}, now: [] };
    for (const r of ack.results || []) {
      const e = sent.get(r.mid);
      if (!e) continue;
      // Rule 13: the write went to the survivor of a merge; what this phone holds of the
      // merged-away record follows it there.
      if (r.redirected_to && r.status !== "rejected") {
        await repoint(s, e.table, e.id, r.redirected_to, merges);
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
        error: r.error || { error: "rejected", detail: t("The server refused this change.") },
        at: Date.now(),
        about: await aboutWrite(s, e),
      });
      refresh.set(`${e.table}/${e.id}`, e);
      merged.delete(`${e.table}/${e.id}`);
    }
    if ((ack.results || []).length) await s.meta.put(ack.results.slice(-50), "last_results");

    const reset = await resetState(s, data, sentCursor);
    const left = []; // ids of rows deleted or evicted

    // The page's puts and deletes are asked for without waiting for each one (the
    // transaction runs them in order; a failure aborts it): a first sync of a big
    // territory is thousands of rows. The outbox is read once for them, again after a
    // repoint changed it; a row waits for nothing else.
    let unsent = null;
    // A reset into an empty phone stamps nothing: there is nothing to sweep after it.
    const stamp = reset && !reset.fresh ? reset.epoch : null;
    // Every SLICE rows the page waits for the previous slice's last put: the app gets a
    // turn (a tap, a frame) between slices instead of after 2,000 rows, while the slice
    // just asked for keeps the transaction open and IndexedDB busy.
    let asked = 0;
    let sliceEnd = null;
    for (const change of data.changes || []) {
      if (!TABLES.includes(change.table)) continue; // a newer server's table
      touched.add(`${change.table}/${change.id}`);
      if (change.op === "put" && change.row) {
        delete merges.map[change.id]; // back: its merge was undone
        if (!unsent) unsent = groupPending(await s.outbox.getAll());
        const row = overlay(change.row, change.seq, unsent.get(`${change.table}/${change.id}`) || []);
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
        const put = s[change.table].raw.put(row);
        if ((asked += 1) % SLICE === 0) {
          const previous = sliceEnd;
          sliceEnd = put;
          if (previous) await request(previous);
        }
      } else if (change.op === "delete") {
        s[change.table].raw.delete(change.id);
        left.push(change.id);
        if (change.merged_into) {
          await repoint(s, change.table, change.id, change.merged_into, merges);
          unsent = null;
        }
      } else if (change.op === "evict") {
        left.push(...(await evict(s, change.table, change.id)));
        if (change.erased) erased[change.id] = erasedNow = Date.now();
      }
    }
    // The history kept of a record the phone no longer holds goes with it.
    const histories = (await s.meta.get("history")) || {};
    if (left.some((id) => histories[id])) {
      for (const id of left) delete histories[id];
      await s.meta.put(histories, "history");
    }
    // Nothing of an erased record stays: this phone's copies of refused writes, drafts.
    const gone = (x) => erased[x.id] || erased[x.account_id] || erased[x.record_id] ||
      erased[(x.about || {}).account_id] || erased[(x.fields || {}).account_id];
    rejected = rejected.filter((x) => !gone(x));
    for (const d of await s.drafts.getAll()) if (gone(d)) await s.drafts.delete(d.key);
    await s.meta.put(erased, "erased");
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

    await s.meta.put(rejected, "rejected");
    await s.meta.put(merges.map, "merged");
    if (data.cursor !== undefined) await s.meta.put(data.cursor, "cursor");
    if (reset) {
      if (data.has_more) {
        await s.meta.put({ ...reset, cursor: data.cursor }, "reset");
      } else {
        if (!reset.fresh) await sweep(s, reset.epoch);
        await s.meta.delete("reset");
      }
    }
    await s.meta.put(observe(await s.meta.get("hlc"), data.hlc_max), "hlc");
    if (typeof data.server_time === "number") {
      await s.meta.put(data.server_time - Date.now(), "server_offset_ms");
    }
    return {
      acked: acked.length,
      changed: acked.length + touched.size + refresh.size + (reset && !data.has_more ? 1 : 0),
      merged: merges.now,
    };
  });
  if (outcome.changed) emitData(outcome.merged, data.has_more);
  return outcome.acked;
}

// Pulled pages tell the screens at most every 5 s while more pages come (a first sync
// of a big territory is dozens of pages; each redraw would slow it), and always after the
// last one.
const DATA_EVERY_MS = 5000;
let heldData = null;
let lastDataAt = -Infinity;
function emitData(merged, more) {
  heldData = { sync: true, merged: [...(heldData ? heldData.merged : []), ...merged] };
  if (more && performance.now() - lastDataAt < DATA_EVERY_MS) return;
  flushData();
}

function flushData() {
  if (!heldData) return;
  const detail = heldData;
  heldData = null;
  lastDataAt = performance.now();
  emit("data", detail);
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
// page can drop the rest. A reset continues while we send the cursor its last page gave;
// a reset answer to any other cursor starts over.
async function resetState(s, data, sentCursor) {
  const ongoing = await s.meta.get("reset");
  if (ongoing && ongoing.cursor === sentCursor) return ongoing;
  if (data.reset) {
    // A first sync: reading every row back at its end, to find none to sweep, took a
    // big territory's phone seconds. Rows written here meanwhile are the phone's own.
    const counts = await Promise.all([...TABLES, "outbox"].map((name) => s[name].count()));
    return { epoch: crypto.randomUUID(), cursor: null, fresh: counts.every((n) => n === 0) };
  }
  if (ongoing) await s.meta.delete("reset"); // our cursor moved on some other way
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

// The next try, after the backoff and at least `atLeastMs` (a server's Retry-After, with
// up to a second of jitter so that a team's phones do not all come back at once); the
// delay chosen.
function scheduleRetry(atLeastMs = 0) {
  clearRetry();
  const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  const jittered = backoff / 2 + Math.random() * (backoff / 2);
  const delay = Math.max(jittered, atLeastMs > 0 ? atLeastMs + Math.random() * 1000 : 0);
  retryTimer = setTimeout(() => {
    retryTimer = null;
    syncNow();
  }, delay);
  return delay;
}

function clearRetry() {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
}

// Photos and voice notes whose rows the server now has go up after the sync, one at a time
// (js/attachments.js, loaded only when some wait); a sync after them brings `uploaded`.
async function uploadSoon() {
  const waiting = await read(["blobs"], (s) => s.blobs.index("pending").count(1));
  if (waiting && (await (await import("./attachments.js")).uploadPending())) syncNow();
}

// A local write goes out shortly, unless we are waiting out a backoff.
function syncSoon() {
  if (soonTimer) clearTimeout(soonTimer);
  soonTimer = setTimeout(() => {
    soonTimer = null;
    if (!retryTimer && navigator.onLine) syncNow();
  }, 800);
}

// Drop this phone's copy of a refused write (js/rejections.js), once its user has read
// it: if the server keeps a row of it, the row still comes.
export async function dismissRejected(mid) {
  await write(["meta"], async (s) => {
    const list = (await s.meta.get("rejected")) || [];
    await s.meta.put(list.filter((r) => r.mid !== mid), "rejected");
  });
  emit("data", { rejected: true });
  await refreshStatus();
}

let started = false;

export function startSync() {
  if (started) return;
  started = true;
  window.addEventListener("online", () => {
    failures = 0;
    clearRetry();
    syncNow();
  });
  window.addEventListener("offline", () => refreshStatus());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") syncNow();
  });
  setInterval(() => {
    if (document.visibilityState === "visible" && !retryTimer) syncNow();
  }, INTERVAL_MS);
  on("outbox", () => {
    refreshStatus();
    syncSoon();
  });
  on("session", (s) => {
    if (s && s.token) {
      failures = 0;
      syncNow();
    } else refreshStatus();
  });
  on("data", (d) => {
    if (d && d.remote) refreshStatus(); // another tab synced or wrote
  });
  syncNow();
}
