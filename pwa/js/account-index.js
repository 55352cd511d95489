// The phone's accounts searched (js/search.js) by the accounts list (js/screens/accounts.js,
// loaded when first opened), the task form's account picker and the reassign screen.

import { on } from "./events.js";
import { allRows, keptRows, pendingKeys, rowsById } from "./records.js";
import { buildIndex, findAccounts, joinIndex, sortAccounts } from "./search.js";

// The phone's accounts and their contacts, indexed for search (js/search.js) once, until
// local rows change; built in a worker and kept in IndexedDB (js/search-worker.js), here
// when the browser runs no module worker. Built again after each sync, and asked for as
// the app starts (prefetchIndex), so that Accounts opens without waiting for it.
let indexed = null;
let unsent = null; // pendingKeys(), kept until local rows change as the index is
on("data", () => {
  indexed = null;
  unsent = null;
});
on("sync", (s) => {
  if (s.state === "synced" && !indexed) setTimeout(localIndex, 500);
});
export function localIndex() {
  if (!indexed) {
    // The accounts as kept (js/records.js), never changed here: their map by id is Today's.
    indexed = Promise.all([keptRows("accounts"), indexInWorker().catch(() => null)]).then(async ([a, kept]) =>
      kept ? joinIndex(kept, a, [], rowsById(a)) : buildIndex(a, await allRows("contacts")));
  }
  return indexed;
}

// The app starts: the index is read back (or built) by the worker while the first screen
// is drawn, and joined with the accounts as soon as both are there, not after the first
// sync as before: Accounts opened straight after a restart waited for the worker's start,
// its read and the join.
export function prefetchIndex() {
  localIndex().catch(() => {});
}

let worker = null; // false once it failed to start
let asks = 0;
const asked = new Map(); // message id -> its promise's resolve and reject
function indexInWorker() {
  if (worker === false) return Promise.reject(new Error());
  if (!worker) {
    worker = new Worker(new URL("./search-worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => {
      const waiting = asked.get(data.id);
      if (!waiting) return; // already answered (the index, then failing to keep it)
      asked.delete(data.id);
      if (data.error) waiting.reject(new Error(data.error));
      else waiting.resolve(data.entries);
    };
    worker.onerror = () => { // no module workers here: every question fails, now and later
      worker = false;
      for (const waiting of asked.values()) waiting.reject(new Error());
      asked.clear();
    };
  }
  const id = (asks += 1);
  return new Promise((resolve, reject) => {
    asked.set(id, { resolve, reject });
    worker.postMessage(id);
  });
}

export function unsentKeys() {
  if (!unsent) unsent = pendingKeys();
  return unsent;
}

// The accounts a search and status filter find, by name (the task form's picker and the
// reassign screen's "all in this filter" find what the list finds).
export async function matchAccounts(q, status = "") {
  return sortAccounts(findAccounts(await localIndex(), q, status));
}

