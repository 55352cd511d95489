// A tiny promise wrapper over IndexedDB. Only IndexedDB requests may be awaited inside
// `transact`: awaiting anything else (fetch, timers) lets the transaction auto-commit.

export const TABLES = [
  "accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts", "rejections",
  "attachments",
];
// blobs: photos and voice notes by SHA-256, kept until the server holds them (js/attachments.js).
export const STORES = [...TABLES, "outbox", "meta", "drafts", "blobs"];

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
];
const DB_VERSION = UPGRADES.length;

let opening = null;
let database = null; // the open connection, for putNow()/deleteNow()

// Writes to each store in this page, counted as their transactions end (committed or not):
// rows read while the count stays the same are still the store's (js/records.js allRows). A
// store counts as written when a transaction put, added, deleted or cleared through the
// handle, or took its raw IDBObjectStore.
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

// A store handle whose methods answer promises. `touched`: the names of stores written.
function wrapStore(store, touched) {
  const writing = () => touched.add(store.name);
  return {
    get: (key) => request(store.get(key)),
    getAll: (query, count) => request(store.getAll(query, count)),
    put: (value, key) => {
      writing();
      return request(key === undefined ? store.put(value) : store.put(value, key));
    },
    add: (value) => {
      writing();
      return request(store.add(value));
    },
    delete: (key) => {
      writing();
      return request(store.delete(key));
    },
    clear: () => {
      writing();
      return request(store.clear());
    },
    count: (query) => request(store.count(query)),
    index: (name) => {
      const index = store.index(name);
      return {
        getAll: (query, count) => request(index.getAll(query, count)),
        getAllKeys: (query) => request(index.getAllKeys(query)),
        count: (query) => request(index.count(query)),
      };
    },
    get raw() {
      writing();
      return store;
    },
  };
}

// Run `work(stores)` in one transaction over `names`; resolves with its result once the
// transaction has committed, rejects (and aborts) if `work` throws.
export async function transact(names, mode, work) {
  const db = await openDb();
  const tx = db.transaction(names, mode);
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
  for (const name of names) stores[name] = wrapStore(tx.objectStore(name), touched);
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
  return write(STORES, async (s) => {
    for (const name of STORES) await s[name].clear();
  });
}
