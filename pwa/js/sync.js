// The sync client for SPEC section 4: push the outbox, pull changes, one round trip at a
// time. Network calls happen between IndexedDB transactions, never inside one: a batch is
// read in one transaction, sent, and the whole answer is stored in another.

import { t } from "./i18n.js";
import { apiFetch, errorDetail, NetworkError, networkError } from "./api.js";
import { noteWrites, read, unpackSoon, write } from "./db.js";
import { emit, on } from "./events.js";
import { countUnresolved } from "./rejections.js";
import { expireSession, refreshUsers, session } from "./session.js";
import { heldMessage } from "./status.js";
import { applyResponse } from "./sync-store.js";

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
    let sent = ahead;
    ahead = null;
    if (!sent) {
      const batch = await readBatch(fromMid);
      // A request that pushes nothing: the sync worker pulls the pages and stores them.
      const pulled = batch.mutations.length === 0 ? await pullInWorker(batch) : null;
      if (pulled && pulled.done) return "done";
      if (pulled && pulled.signedOut) {
        await refreshStatus();
        return "stopped";
      }
      sent = pulled ? { batch, result: pulled.result } : send(batch);
    }
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
      const outcome = await applyResponse(data, batch.cursor, { refused: t("The server refused this change.") });
      if (outcome.changed) emitData(outcome.merged, data.has_more);
      const acked = outcome.acked;
      // How long storing the answer took, for bench/pwa.py and the devtools' timeline.
      performance.measure("fieldcrm:sync-store", { start: stored, detail: (data.changes || []).length });
      if (outcome.packed) performance.measure("fieldcrm:packed", { start: performance.now(), detail: outcome.packed });
      fromMid = 0;
      batchLimit = MAX_MUTATIONS;
      // Go on while the pull has pages, or the outbox had more than one request could
      // carry and the server took some (a server taking none must not make us spin).
      if (!data.has_more && !(batch.more && acked > 0)) {
        // A first sync's packs (js/db.js): unpacked here when no worker does it.
        if (puller === false || typeof Worker === "undefined") unpackSoon();
        return "done";
      }
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

// The request body for a batch: its writes and the pull from its cursor.
async function requestBody(batch) {
  return {
    protocol: PROTOCOL,
    client_id: batch.clientId,
    cursor: batch.cursor,
    pull_limit: PULL_LIMIT,
    mutations: batch.mutations,
    device: { ...batch.device, app_version: await appVersion(), platform: platform() },
  };
}

// One request. Answers {batch, result}.
async function send(batch) {
  const result = await apiFetch(SYNC_PATH, {
    method: "POST",
    body: await requestBody(batch),
    token: session().token,
    timeoutMs: TIMEOUT_MS,
  });
  return { batch, result };
}

// The sync worker (js/sync-worker.js): a pull that pushes nothing runs there, page after
// page, off the main thread. Without module workers (or if it fails to start) the page
// pulls itself, as it always could. `puller`: null not started yet, false unavailable.
let puller = null;
let pulls = 0;
let pulling = null; // the pull under way: {id, resolve}
function startPuller() {
  let ready = false;
  const worker = new Worker(new URL("./sync-worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.ready) ready = true;
    if (!pulling || data.id !== pulling.id) return;
    if (data.page) pageStored(data.page);
    if (data.end) {
      const done = pulling;
      pulling = null;
      done.resolve(data.end);
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    worker.terminate();
    // Never started: the page pulls from now on. Failed later: a new worker next time.
    puller = ready ? null : false;
    const failed = pulling;
    pulling = null;
    if (failed) failed.resolve(ready ? { error: event.message || t("Something went wrong") } : null);
  };
  return worker;
}

// Answers {done} | {result} (an answer that is not a 2xx, left to exchange()) |
// {signedOut}, throws what the sync must report; null when the worker cannot pull.
async function pullInWorker(batch) {
  if (puller === false || typeof Worker === "undefined") return null;
  if (!puller) puller = startPuller();
  const body = await requestBody(batch);
  const end = await new Promise((resolve) => {
    pulling = { id: (pulls += 1), resolve };
    puller.postMessage({
      id: pulling.id,
      body,
      token: session().token,
      refused: t("The server refused this change."),
      timeoutMs: TIMEOUT_MS,
    });
  });
  if (!end) return null;
  if (end.failure) throw networkError(end.failure);
  if (end.error) throw new Error(end.error);
  return end;
}

// A page the worker stored: this page's caches learn which stores changed
// (js/records.js allRows), the screens are told, the timings go on this page's timeline.
function pageStored(page) {
  noteWrites(page.stores);
  if (page.changed) emitData(page.merged, page.more);
  const [at, ms, rows] = page.store;
  performance.measure("fieldcrm:sync-store", { start: at - performance.timeOrigin, duration: ms, detail: rows });
  if (page.packed) performance.measure("fieldcrm:packed", { start: performance.now(), detail: page.packed });
  if (page.fetch) {
    const [start, duration, bytes] = page.fetch;
    performance.measure("fieldcrm:sync-fetch", { start: start - performance.timeOrigin, duration, detail: bytes });
  }
}

// Signed out: a pull under way stops where it is (each page it stored came with its
// cursor; the sign-out emptied the phone after or before it, never in between).
function stopPuller() {
  if (puller) puller.terminate();
  puller = null;
  const stopped = pulling;
  pulling = null;
  if (stopped) stopped.resolve({ signedOut: true });
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

// Pulled pages tell the screens at most every 5 s while more pages come (a first sync
// of a big territory is dozens of pages; each redraw would slow it), and always once the
// sync is over: runOnce tells them after the status (the last page's rows are stored by
// then), so that the badge reads "synced" before the screens read every store again.
const DATA_EVERY_MS = 5000;
let heldData = null;
let lastDataAt = -Infinity;
function emitData(merged, more) {
  heldData = { sync: true, merged: [...(heldData ? heldData.merged : []), ...merged] };
  if (!more || performance.now() - lastDataAt < DATA_EVERY_MS) return;
  flushData();
}

function flushData() {
  if (!heldData) return;
  const detail = heldData;
  heldData = null;
  lastDataAt = performance.now();
  emit("data", detail);
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
    } else {
      stopPuller();
      refreshStatus();
    }
  });
  on("data", (d) => {
    if (d && d.remote) refreshStatus(); // another tab synced or wrote
  });
  syncNow();
}
