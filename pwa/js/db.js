// A tiny promise wrapper over IndexedDB. Only IndexedDB requests may be awaited inside
// `transact`: awaiting anything else (fetch, timers) lets the transaction auto-commit.

export const TABLES = [
  "accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts", "rejections",
  "attachments",
];
// blobs: photos and voice notes by SHA-256, kept until the server holds them (js/attachments.js).
// packs: a first sync's rows, many to a record, until unpacked (below).
export const STORES = [...TABLES, "outbox", "meta", "drafts", "blobs", "packs"];

const DB_NAME = "fieldcrm";
// Rows that hang off an account, indexed so an evicted account takes them along. Not
// `rejections`: a refused write stays with its writer when its account leaves (rule 12).
const BY_ACCOUNT = ["contacts", "visits", "notes", "tasks", "deals", "conflicts", "attachments"];
// The record stores version 1 made (later tables get their own step).
const TABLES_1 = ["accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts"];

// UPGRADES[n] takes the database from version n to n + 1. A phone that skipped versions runs
// every step after its own, in order, inside the one upgrade transaction: stores and rows
// it already has are kept. Never edit a step that has shipped; add one.
const UPGRADES = [
  // 1: the record stores, the outbox, meta.
  (db) => {
    for (const table of TABLES_1) {
      const store = db.createObjectStore(table, { keyPath: "id" });
      if (BY_ACCOUNT.includes(table)) store.createIndex("account_id", "account_id");
      if (table === "conflicts") store.createIndex("record_id", "record_id");
    }
    const outbox = db.createObjectStore("outbox", { keyPath: "key", autoIncrement: true });
    outbox.createIndex("mid", "mid", { unique: true });
    outbox.createIndex("row", ["table", "id"]);
    db.createObjectStore("meta");
  },
  // 2: drafts of the visit, note and task forms (js/drafts.js), until saved or discarded.
  (db) => {
    db.createObjectStore("drafts", { keyPath: "key" });
  },
  // 3: the server's rejections rows (SPEC 4 rule 12), found by the write they keep, so
  // the copy this phone kept in meta "rejected" gives way to the server's (js/sync.js).
  (db) => {
    const store = db.createObjectStore("rejections", { keyPath: "id" });
    store.createIndex("write", ["client_id", "mid"]);
  },
  // 4: attachments rows (SPEC section 13), and their bytes until uploaded (`pending` 1).
  (db) => {
    db.createObjectStore("attachments", { keyPath: "id" }).createIndex("account_id", "account_id");
    db.createObjectStore("blobs", { keyPath: "sha256" }).createIndex("pending", "pending");
  },
  // 5: packs of a first sync's rows, {key, table, rows}, read as rows of their table (below).
  // Keys are arrays in the order the packs were written (packKeys), a pack written again
  // keeps its place (packContext's drop).
  (db) => {
    db.createObjectStore("packs", { keyPath: "key" }).createIndex("table", "table");
  },
];
const DB_VERSION = UPGRADES.length;

let opening = null;
let database = null; // the open connection, for putNow()/deleteNow()

// Writes to each store in this thread, counted as their transactions end (committed or
// not): rows read while the count stays are the store's (js/records.js allRows). A handle's
// put, add, delete, clear or raw counts.
const writes = new Map();
export const writeCount = (name) => writes.get(name) || 0;
function wrote(names) {
  for (const name of names) writes.set(name, writeCount(name) + 1);
}
// Stores another thread of this page wrote (the sync worker, js/sync.js): counted as ours.
export const noteWrites = (names) => wrote(names);

export function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export function openDb() {
  if (opening) return opening;
  opening = new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = (event) => {
      for (let version = event.oldVersion; version < DB_VERSION; version += 1) {
        UPGRADES[version](req.result);
      }
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab wants a newer schema: step aside so it is not blocked.
      db.onversionchange = () => {
        db.close();
        opening = null;
        database = null;
      };
      database = db;
      resolve(db);
    };
    req.onerror = () => {
      opening = null;
      reject(req.error);
    };
    req.onblocked = () => console.warn("fieldcrm: database upgrade blocked by another tab");
  });
  return opening;
}

// A first sync's packs (docs/pwa.md has the rules): every read of a table sees its packed
// rows; the store's own row is the newest, then the newest pack's. What each thread read
// of them, by table: {known: keys, rows: Map(id -> row), at: Map(id -> [pack keys]), by}.
const PACKED = new Map();

async function packsOf(packs, table) {
  const byTable = packs.index("table");
  const keys = await request(byTable.getAllKeys(table));
  if (!keys.length) {
    PACKED.delete(table);
    return null;
  }
  // Still right while every pack is one it read: the rows of a pack unpacked since are in
  // their store, which wins; a pack changed or added has a new key.
  let hit = PACKED.get(table);
  if (!hit || !keys.every((key) => hit.known.has(JSON.stringify(key)))) {
    const rows = new Map();
    const at = new Map();
    for (const pack of await request(byTable.getAll(table))) { // in key order: oldest first
      for (const row of pack.rows) {
        rows.set(row.id, row);
        if (at.has(row.id)) at.get(row.id).push(pack.key);
        else at.set(row.id, [pack.key]);
      }
    }
    hit = { known: new Set(keys.map((key) => JSON.stringify(key))), rows, at, by: {} };
    PACKED.set(table, hit);
  }
  return hit;
}

// The packed rows whose `name` is `value`.
function packedBy(hit, name, value) {
  if (!hit.by[name]) {
    const by = new Map();
    for (const row of hit.rows.values()) {
      const v = row[name];
      if (v === undefined || v === null) continue;
      if (by.has(v)) by.get(v).push(row);
      else by.set(v, [row]);
    }
    hit.by[name] = by;
  }
  return hit.by[name].get(value) || [];
}

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const unheld = (hit, held) => [...hit.rows.values()].filter((row) => !held.has(row.id));

// A store handle whose methods answer promises. `touched`: the names of stores written;
// `tx`: the transaction's packs (packContext).
function wrapStore(store, touched, tx) {
  const writing = () => touched.add(store.name);
  const table = TABLES.includes(store.name) && tx.packs ? store.name : null;
  const packs = () => (table ? tx.packed(table) : Promise.resolve(null));
  // The packed rows an index's `query` (a key) finds that the store does not hold.
  const packedMatching = async (name, query) => {
    const hit = await packs();
    if (!hit) return [];
    const found = packedBy(hit, name, query);
    const held = await Promise.all(found.map((row) => request(store.getKey(row.id))));
    return found.filter((row, i) => held[i] === undefined);
  };
  return {
    get: async (key) => {
      const row = await request(store.get(key));
      if (row !== undefined || !table) return row; // the store's own row is the newest
      const hit = await packs();
      if (!hit || !hit.rows.has(key)) return row;
      return structuredClone(hit.rows.get(key)); // the caller's own
    },
    getAll: async (query, count) => {
      const whole = query === undefined && count === undefined;
      const [rows, hit] = await Promise.all([request(store.getAll(query, count)), whole ? packs() : null]);
      const more = hit ? unheld(hit, new Set(rows.map((row) => row.id))) : [];
      return more.length ? rows.concat(more).sort(byId) : rows;
    },
    ownKeys: () => request(store.getAllKeys()),
    put: (value, key) => {
      writing();
      return request(key === undefined ? store.put(value) : store.put(value, key));
    },
    add: (value) => {
      writing();
      if (store.name === "packs") {
        touched.add(value.table); // its table's rows changed
        if (tx.forget) tx.forget(value.table);
      }
      return request(store.add(value));
    },
    delete: (key) => {
      writing();
      const deleted = request(store.delete(key)); // at once: in order with what follows
      if (store.name === "packs" && tx.forget) tx.forget();
      if (!table) return deleted;
      return Promise.all([deleted, tx.drop(table, key)]).then(([result]) => result);
    },
    clear: () => {
      writing();
      if (store.name === "packs" && tx.forget) tx.forget();
      return request(store.clear());
    },
    count: async (query) => {
      const hit = query === undefined && (await packs());
      if (!hit) return request(store.count(query));
      const keys = await request(store.getAllKeys());
      return keys.length + unheld(hit, new Set(keys)).length;
    },
    index: (name) => {
      const index = store.index(name);
      // A query other than one key: the store alone.
      const plain = (query) => table && query !== undefined && !(query instanceof IDBKeyRange);
      return {
        getAll: async (query, count) => {
          if (!plain(query) || count !== undefined) return request(index.getAll(query, count));
          const [rows, more] = await Promise.all([request(index.getAll(query)), packedMatching(name, query)]);
          return more.length ? rows.concat(more).sort(byId) : rows;
        },
        getAllKeys: async (query) => {
          if (!plain(query)) return request(index.getAllKeys(query));
          const [keys, more] = await Promise.all([request(index.getAllKeys(query)), packedMatching(name, query)]);
          return more.length ? keys.concat(more.map((row) => row.id)).sort() : keys;
        },
        count: async (query) => {
          if (!plain(query)) return request(index.count(query));
          const [n, more] = await Promise.all([request(index.count(query)), packedMatching(name, query)]);
          return n + more.length;
        },
      };
    },
    get raw() {
      writing();
      return store;
    },
  };
}

// A transaction's packs: `packed(table)` read once (again once it changed them);
// `drop(table, id)` takes a deleted row out of the packs that hold it.
function packContext(packs, touched) {
  if (!packs) return { packs: null };
  const seen = new Map();
  const packed = (table) => {
    if (!seen.has(table)) seen.set(table, packsOf(packs, table));
    return seen.get(table);
  };
  // A row deleted: each pack holding it written again without it, under a new key in its
  // place ([3, 1] < [3, 1, 1] < [3, 2]); else an empty pack: a new key (packsOf).
  const drop = async (table, id) => {
    const hit = await packed(table);
    if (!hit) return;
    let renamed = false;
    for (const key of hit.at.get(id) || []) {
      const pack = await request(packs.get(key));
      if (!pack) continue;
      packs.delete(key);
      packs.add({ ...pack, key: [...key, 1], rows: pack.rows.filter((row) => row.id !== id) });
      renamed = true;
    }
    if (!renamed) packs.add({ key: keysAfter(await request(packs.getAllKeys()))(), table, rows: [] });
    seen.delete(table);
    touched.add("packs");
  };
  const forget = (table) => (table ? seen.delete(table) : seen.clear());
  return { packs, packed, drop, forget };
}

// The next packs' keys, one a call: [n, 0, u], [n, 1, u]... after every pack; `u`
// (random): no key is ever used twice (packsOf trusts keys it knows).
export async function packKeys(s) {
  return keysAfter(await s.packs.ownKeys());
}

function keysAfter(keys) {
  const n = keys.length ? keys[keys.length - 1][0] + 1 : 1;
  const u = crypto.randomUUID();
  let i = 0;
  return () => [n, i++, u];
}

// Adds each row its store does not hold yet; a row it holds is newer, and stays.
function addAbsent(store, rows) {
  for (const row of rows) {
    const req = store.add(row);
    req.onerror = (event) => {
      event.preventDefault(); // the key is taken: not a failure of the transaction
      event.stopPropagation();
    };
  }
}

// Unpacks the newest pack; answers whether there was one. Reads answer the same after:
// no write to the table is counted.
export async function unpackNewest() {
  const newest = await read(["packs"], async (s) => {
    const keys = await s.packs.ownKeys();
    return keys.length ? s.packs.get(keys[keys.length - 1]) : null;
  });
  if (!newest) return false;
  await transact([newest.table, "packs"], "readwrite", async (s, tx) => {
    const pack = await s.packs.get(newest.key);
    if (!pack) return; // another thread unpacked it
    addAbsent(tx.objectStore(pack.table), pack.rows);
    s.packs.delete(pack.key);
  });
  return true;
}

// Every pack, in a transaction over the tables and `packs` (a reset that sweeps).
export async function unpackAllIn(s, tx) {
  const packs = await s.packs.getAll();
  for (const pack of packs.reverse()) addAbsent(tx.objectStore(pack.table), pack.rows);
  if (packs.length) await s.packs.clear();
}

// Unpacks every pack in the background, one run per thread: a second after it is asked,
// then a pack every 10 ms (a screen's read waits for one pack at most).
const UNPACK_AFTER_MS = 1000;
const UNPACK_PAUSE_MS = 10;
let unpacking = null;
export function unpackSoon() {
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  unpacking ||= (async () => {
    try {
      await pause(UNPACK_AFTER_MS);
      while (await unpackNewest()) await pause(UNPACK_PAUSE_MS);
    } catch (err) {
      console.warn("fieldcrm: unpacking stopped", err); // the next sync goes on
    } finally {
      unpacking = null;
    }
  })();
  return unpacking;
}

// Run `work(stores)` in one transaction over `names`; resolves with its result once the
// transaction has committed, rejects (and aborts) if `work` throws.
export async function transact(names, mode, work) {
  const db = await openDb();
  // A table's rows may be packed: its transactions read the packs too.
  const withPacks = names.some((name) => TABLES.includes(name));
  const tx = db.transaction(withPacks && !names.includes("packs") ? [...names, "packs"] : names, mode);
  const touched = new Set();
  const done = new Promise((resolve, reject) => {
    tx.oncomplete = () => {
      wrote(touched);
      resolve();
    };
    tx.onabort = () => {
      wrote(touched);
      reject(tx.error || new DOMException("Transaction aborted", "AbortError"));
    };
    tx.onerror = () => {}; // onabort follows with the error
  });
  const stores = {};
  const packs = packContext(withPacks ? tx.objectStore("packs") : null, touched);
  for (const name of names) stores[name] = wrapStore(tx.objectStore(name), touched, packs);
  let result;
  try {
    result = await work(stores, tx);
  } catch (err) {
    try {
      tx.abort();
    } catch {
      // already finished
    }
    await done.catch(() => {});
    throw err;
  }
  await done;
  return result;
}

export const read = (names, work) => transact(names, "readonly", work);
export const write = (names, work) => transact(names, "readwrite", work);

// One put or delete, asked for and committed in this very turn (IDBTransaction.commit), not
// after an await: for `pagehide` and route changes, when the page may get no further turn
// and the next screen must read what was written. Resolves once committed.
export function putNow(name, value) {
  return writeNow(name, (store) => store.put(value));
}

export function deleteNow(name, key) {
  return writeNow(name, (store) => store.delete(key));
}

function writeNow(name, change) {
  let tx;
  try {
    tx = database && database.transaction([name], "readwrite");
  } catch {
    tx = null; // the connection is closing (another tab upgrades): take the slow road
  }
  if (!tx) return write([name], (s) => request(change(s[name].raw)));
  const done = new Promise((resolve, reject) => {
    tx.oncomplete = () => {
      wrote([name]);
      resolve();
    };
    tx.onabort = () => reject(tx.error || new DOMException("Transaction aborted", "AbortError"));
    tx.onerror = () => {}; // onabort follows with the error
  });
  change(tx.objectStore(name));
  if (tx.commit) tx.commit();
  return done;
}

export async function getMeta(key) {
  return read(["meta"], (s) => s.meta.get(key));
}

// Empty every store in one transaction (sign-out): nothing of the user stays on the device.
export async function clearAll() {
  PACKED.clear();
  return write(STORES, async (s) => {
    for (const name of STORES) await s[name].clear();
  });
}
