// A module worker that runs the sync's pulls (js/sync.js): it asks for the pages, parses
// them and stores each with its cursor in one transaction (js/sync-store.js), so a first
// sync of a big territory (50,000 rows: the structured clone of each row, the IndexedDB
// requests, the JSON) no longer takes the page's main thread. The page keeps everything
// else: the outbox's requests, the status, what a failure means. It is asked only for
// requests that push nothing, one pull at a time, under the page's sync lock.
//
// Asked {id, body, token, refused, timeoutMs}: `body` is the request to send, its cursor
// the first page's. Answers, for each page stored, {id, page: {changed, merged, more,
// stores, packed, store, fetch}}, then once {id, end}: {done: true} once a page said there is no
// more, {result} for an answer that is not a 2xx (the page deals with it, nothing of it
// was stored), {failure} when no whole answer came (js/http.js), {signedOut: true} when
// the phone was signed out meanwhile, or {error}.

import { STORES, unpackSoon, writeCount } from "./db.js";
import { HttpFailure, fetchJson } from "./http.js";
import { SignedOut, applyResponse } from "./sync-store.js";

const SYNC_PATH = "/api/sync/v1";

// One request; the answer and its resource timing ([start, duration, bytes], the start
// in ms since 1970 so the page can place it on its own timeline).
async function send(body, token, timeoutMs) {
  const result = await fetchJson(SYNC_PATH, { method: "POST", body, token, timeoutMs });
  const url = new URL(SYNC_PATH, self.location.href).href;
  const timing = performance.getEntriesByName(url).pop();
  performance.clearResourceTimings();
  const fetched = timing
    ? [performance.timeOrigin + timing.startTime, timing.responseEnd - timing.startTime, timing.encodedBodySize]
    : null;
  return { result, fetched };
}

async function pull({ id, body, token, refused, timeoutMs }) {
  let cursor = body.cursor;
  let ahead = null; // the next page's request, sent while this page is stored
  for (;;) {
    const sent = ahead || send({ ...body, cursor }, token, timeoutMs);
    ahead = null;
    const { result, fetched } = await sent;
    if (!(result.status >= 200 && result.status < 300)) return { result };
    const data = result.data || {};
    if (data.has_more) {
      ahead = send({ ...body, cursor: data.cursor ?? null }, token, timeoutMs);
      ahead.catch(() => {}); // its failure is met when it is awaited, next round
    }
    const counts = STORES.map(writeCount);
    const started = performance.now();
    const outcome = await applyResponse(data, cursor, { refused, token });
    const store = [performance.timeOrigin + started, performance.now() - started, (data.changes || []).length];
    self.postMessage({
      id,
      page: {
        changed: outcome.changed,
        merged: outcome.merged,
        more: Boolean(data.has_more),
        stores: STORES.filter((name, i) => writeCount(name) !== counts[i]),
        packed: outcome.packed,
        store,
        fetch: fetched,
      },
    });
    if (!data.has_more) {
      unpackSoon(); // a first sync's packs, into their tables, in the background (js/db.js)
      return { done: true };
    }
    cursor = data.cursor ?? null;
  }
}

self.onmessage = async ({ data }) => {
  let end;
  try {
    end = await pull(data);
  } catch (err) {
    if (err instanceof HttpFailure) end = { failure: err.why };
    else if (err instanceof SignedOut) end = { signedOut: true };
    else end = { error: String((err && err.message) || err) };
  }
  self.postMessage({ id: data.id, end });
};

self.postMessage({ ready: true });
