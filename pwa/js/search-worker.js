// The accounts' search index (js/search.js), built off the main thread and kept in
// IndexedDB (meta "search_index") with the state of the rows it was built from: an app
// started again reads it back instead of folding 10,000 accounts and their contacts again
// (docs/performance.md has the figures). Asked with any message; answers {entries} in
// the compact form, or {error}.

import { read, write } from "./db.js";
import { buildIndex, compactIndex } from "./search.js";

// What changes whenever an account or a contact can have: the pull's cursor (every page
// of changes moves it), the next mid (every local write) and the outbox's size (a write
// acknowledged or refused).
const stampOf = (s) => Promise.all([s.meta.get("cursor"), s.meta.get("next_mid"), s.outbox.count()])
  .then((parts) => JSON.stringify(parts));
const visible = (row) => !row._deleted;

// Answers the index, and a promise that keeps it (after the answer is sent: a sync's
// transactions may be queued before the write).
async function entries() {
  const [stamp, keptStamp] = await read(["meta", "outbox"],
    (s) => Promise.all([stampOf(s), s.meta.get("search_index_stamp")]));
  if (stamp === keptStamp) {
    const kept = await read(["meta"], (s) => s.meta.get("search_index"));
    if (kept) return [kept, null];
  }
  const [now, accounts, contacts] = await read(["meta", "outbox", "accounts", "contacts"],
    (s) => Promise.all([stampOf(s), s.accounts.getAll(), s.contacts.getAll()]));
  const built = compactIndex(buildIndex(accounts.filter(visible), contacts.filter(visible)));
  // Kept only if the rows are still those it was built from: after a sign-out emptied
  // the phone meanwhile, nothing of them may come back.
  const keep = () => write(["meta", "outbox"], async (s) => {
    if ((await stampOf(s)) !== now) return;
    await s.meta.put(built, "search_index");
    await s.meta.put(now, "search_index_stamp");
  });
  return [built, keep];
}

self.onmessage = async (event) => {
  try {
    const [built, keep] = await entries();
    self.postMessage({ id: event.data, entries: built });
    if (keep) await keep();
  } catch (err) {
    self.postMessage({ id: event.data, error: String((err && err.message) || err) });
  }
};
