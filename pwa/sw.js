// fieldcrm's service worker: boring on purpose.
// - install: precache the app shell into a versioned cache, every file awaited;
// - activate: delete older shell caches, then claim the open pages;
// - fetch: same-origin GET only, and street tiles; never /api/ (data lives in IndexedDB);
//   navigations get the cached shell, shell files come cache-first; the map's files
//   (precached) stale-while-revalidate; street tiles LRU-cached (docs/map.md).
// - a new version waits until the page, on the rep's tap, posts SKIP_WAITING;
// - push reminders: show the task; its Done / Snooze 1 h buttons work offline.

// BEGIN SHELL (written by `python3 pwa/tools/stamp_sw.py`; tests/unit/test_pwa_static.py checks it)
const VERSION = "20a01898ad83";
const SHELL = [
  "/",
  "/css/app.css",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
  "/icons/icon-maskable-192.png",
  "/icons/icon-maskable-512.png",
  "/js/account-index.js",
  "/js/account-map.js",
  "/js/account-picker.js",
  "/js/api.js",
  "/js/app.js",
  "/js/area.js",
  "/js/attachments.js",
  "/js/basemap.js",
  "/js/calendar-feed.js",
  "/js/chunks.js",
  "/js/components.js",
  "/js/db.js",
  "/js/drafts.js",
  "/js/duplicates.js",
  "/js/events.js",
  "/js/geodesic.js",
  "/js/hlc.js",
  "/js/http.js",
  "/js/i18n.js",
  "/js/install.js",
  "/js/lang/fr.js",
  "/js/map-layers.js",
  "/js/map.js",
  "/js/privacy.js",
  "/js/push.js",
  "/js/records.js",
  "/js/rejections.js",
  "/js/route.js",
  "/js/router.js",
  "/js/screens/account.js",
  "/js/screens/accounts.js",
  "/js/screens/campaign.js",
  "/js/screens/checkins.js",
  "/js/screens/conflicts.js",
  "/js/screens/drafts.js",
  "/js/screens/fix-notice.js",
  "/js/screens/history.js",
  "/js/screens/login.js",
  "/js/screens/merge.js",
  "/js/screens/nearby.js",
  "/js/screens/note.js",
  "/js/screens/reassign.js",
  "/js/screens/record-form.js",
  "/js/screens/rejected.js",
  "/js/screens/route-plan.js",
  "/js/screens/settings.js",
  "/js/screens/suggestions.js",
  "/js/screens/tasks.js",
  "/js/screens/team.js",
  "/js/screens/territory.js",
  "/js/screens/today.js",
  "/js/screens/visit.js",
  "/js/search-worker.js",
  "/js/search.js",
  "/js/session.js",
  "/js/status.js",
  "/js/sw-update.js",
  "/js/sync-store.js",
  "/js/sync-worker.js",
  "/js/sync.js",
  "/js/team-local.js",
  "/js/team.js",
  "/js/ui.js",
  "/js/virtual-list.js",
  "/manifest.fr.webmanifest",
  "/manifest.webmanifest",
];
// END SHELL

const CACHE = `fieldcrm-shell-${VERSION}`;
const CACHE_PREFIX = "fieldcrm-shell-";
const SHELL_PATHS = new Set(SHELL);
// The map's files, outside the shell (its budget), kept from install: maps work offline.
const VENDOR_CACHE = "fieldcrm-vendor-1";
const MAP_FILES = ["/vendor/leaflet/leaflet.js", "/vendor/leaflet/leaflet.css", "/basemap/world.json",
  "/vendor/leaflet-markercluster/leaflet.markercluster.js", "/vendor/leaflet-markercluster/MarkerCluster.css"];
// Street tiles: cross-origin CORS images (the CSP lets no other image host in).
const TILE_CACHE = "fieldcrm-tiles-1";
const TILE_CACHE_BYTES = 64 * 1024 * 1024;
const STORED_AT = "x-fieldcrm-stored-at";
const BYTES = "x-fieldcrm-bytes";

self.addEventListener("install", (event) => {
  event.waitUntil(Promise.all([precacheShell(), precacheMap()]));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(deleteOldShells().then(() => self.clients.claim()));
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
  // The app's version, which the page sends with every sync (js/sync.js, rule 14).
  const port = event.ports && event.ports[0];
  if (event.data && event.data.type === "VERSION" && port) port.postMessage(VERSION);
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    if (request.destination === "image" && request.mode === "cors") event.respondWith(streetTile(event, request));
    return;
  }
  if (url.pathname.startsWith("/api/")) return;
  if (request.mode === "navigate") {
    event.respondWith(shellForNavigation(request, url));
  } else if (SHELL_PATHS.has(url.pathname)) {
    event.respondWith(cacheFirst(request, url));
  } else if (/^\/(vendor|basemap)\//.test(url.pathname)) {
    event.respondWith(staleWhileRevalidate(event, request));
  }
});

// Push reminders: a "push" shows the task with "Done" and "Snooze 1 h" buttons. A button
// works offline: the change is written to IndexedDB exactly as the app writes it
// (js/records.js saveWrites: the row and its outbox entry in one transaction, the next mid,
// a ticked clock), then open pages are asked to sync; otherwise the app sends it at its
// next start. This is a classic worker (module workers are not supported everywhere), so
// the little it needs of db.js, hlc.js and records.js is repeated below: keep them in step.
self.addEventListener("push", (event) => {
  event.waitUntil(showReminder(pushPayload(event)));
});

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  const reminder = notification.data || {};
  notification.close();
  if (event.action === "done" || event.action === "snooze") {
    event.waitUntil(applyReminderAction(event.action, reminder));
  } else {
    event.waitUntil(openApp(reminder.url));
  }
});

// The same action from a page: {type: "REMINDER_ACTION", action, reminder} with a reply
// port. Headless browsers cannot click a notification's buttons, so tests come this way.
self.addEventListener("message", (event) => {
  const data = event.data;
  if (!data || data.type !== "REMINDER_ACTION") return;
  const port = event.ports && event.ports[0];
  const reply = (message) => port && port.postMessage(message);
  event.waitUntil(
    applyReminderAction(data.action, data.reminder || {}).then(
      (outcome) => reply({ ok: true, outcome }),
      (err) => reply({ ok: false, error: String((err && err.message) || err) }),
    ),
  );
});

async function precacheShell() {
  const cache = await caches.open(CACHE);
  // cache: "reload" skips the HTTP cache, so a new version never precaches stale files.
  await cache.addAll(SHELL.map((path) => new Request(path, { cache: "reload" })));
}

// The map's files not kept yet; the shell installs even if one fails.
async function precacheMap() {
  const cache = await caches.open(VENDOR_CACHE);
  await Promise.all(MAP_FILES.map(async (path) => {
    if (await cache.match(path)) return;
    await cache.add(new Request(path, { cache: "reload" })).catch(() => {});
  }));
}

async function deleteOldShells() {
  const names = await caches.keys();
  await Promise.all(
    names.filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE).map((name) => caches.delete(name)),
  );
}

// The app lives at "/" with hash routes: its navigations get the shell from the cache, at
// once, whatever the signal. Other paths (server pages) try the network first.
async function shellForNavigation(request, url) {
  const cache = await caches.open(CACHE);
  const shell = await cache.match("/");
  if (url.pathname === "/" || url.pathname === "/index.html") {
    return shell || fetch(request);
  }
  try {
    return await fetch(request);
  } catch (err) {
    if (shell) return shell;
    throw err;
  }
}

async function cacheFirst(request, url) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(url.pathname);
  return cached || fetch(request);
}

// The cached copy at once, refreshed from the network for next time; the network when
// nothing is cached yet.
async function staleWhileRevalidate(event, request) {
  const cache = await caches.open(VENDOR_CACHE);
  const cached = await cache.match(request);
  const fresh = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(request, response.clone());
    return response;
  });
  // Offline with a cached copy: the failed refresh is expected, and nothing to report.
  event.waitUntil(fresh.catch(() => {}));
  return cached || fresh;
}

// -- street tiles -----------------------------------------------------------------------

let tileBytes = null; // the cache's size, counted once per worker start
let tileWrites = Promise.resolve(); // one at a time, for the count

// The kept tile, else the network's (kept); offline, an empty answer: the basemap shows.
async function streetTile(event, request) {
  const cache = await caches.open(TILE_CACHE);
  const kept = await cache.match(request);
  if (kept && Date.now() - kept.headers.get(STORED_AT) > 36e5) keepTile(event, cache, request, kept.clone());
  if (kept) return kept;
  try {
    const response = await fetch(request);
    if (response.ok) keepTile(event, cache, request, response.clone());
    return response;
  } catch {
    return new Response(null, { status: 204 });
  }
}

// Entries keep the order they were put in; a tile used is put again (hourly at most), so
// the front of cache.keys() is the least recently used.
function keepTile(event, cache, request, response) {
  tileWrites = tileWrites.then(async () => {
    const body = await response.arrayBuffer();
    const headers = new Headers(response.headers);
    headers.set(STORED_AT, Date.now());
    headers.set(BYTES, body.byteLength);
    headers.delete("vary");
    tileBytes ??= sizeOf(await cache.matchAll());
    tileBytes += body.byteLength - sizeOf([await cache.match(request)]);
    await cache.delete(request);
    await cache.put(request, new Response(body, { headers }));
    for (const old of tileBytes > TILE_CACHE_BYTES ? await cache.keys() : []) {
      if (tileBytes < TILE_CACHE_BYTES * 0.9) break;
      tileBytes -= sizeOf([await cache.match(old)]);
      await cache.delete(old);
    }
  }).catch(() => {});
  event.waitUntil(tileWrites);
}

const sizeOf = (responses) => responses.reduce((sum, r) => sum + (Number(r && r.headers.get(BYTES)) || 0), 0);

// -- push reminders --------------------------------------------------------------------

const APP_DB = "fieldcrm";
const HOUR_MS = 60 * 60 * 1000;

// The app's words in its language (docs/i18n.md): the page keeps the language in meta
// "lang"; the catalogue is the shell's precached js/lang/LANG.js (a JSON object after
// `export default`). English, or anything unreadable, leaves the English text.
async function reminderWords() {
  let lang = "en";
  let messages = {};
  try {
    const db = await openAppDb();
    lang = await new Promise((resolve) => {
      const req = db.transaction(["meta"]).objectStore("meta").get("lang");
      req.onsuccess = () => resolve(req.result || "en");
      req.onerror = () => resolve("en");
    });
    db.close();
    if (lang !== "en") {
      const response = await caches.match(`/js/lang/${lang}.js`);
      const text = response ? await response.text() : "";
      messages = JSON.parse(text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1));
    }
  } catch {
    messages = {};
  }
  const t = (key, params = {}) => {
    const found = typeof messages[key] === "string" ? messages[key] : key;
    return found.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  };
  return { lang, t };
}

function pushPayload(event) {
  try {
    return event.data ? event.data.json() : {};
  } catch {
    return {};
  }
}

async function showReminder(reminder) {
  const { lang, t } = await reminderWords();
  // userVisibleOnly: every push must show something, even one we cannot read.
  if (!reminder || reminder.type !== "task_reminder" || typeof reminder.task_id !== "string") {
    await self.registration.showNotification("fieldcrm", { body: t("You have a reminder."), data: { url: "/#/tasks" } });
    return;
  }
  const body = [];
  if (reminder.account_name) body.push(String(reminder.account_name));
  if (reminder.due_at) body.push(t("Due {when}", { when: whenText(reminder.due_at, lang) }));
  await self.registration.showNotification(String(reminder.title || t("Task reminder")), {
    body: body.join(" · "),
    tag: reminderTag(reminder.task_id),
    renotify: true,
    icon: "/icons/icon-192.png",
    data: { ...reminder, url: appUrl(reminder.url) },
    actions: [{ action: "done", title: t("Done") }, { action: "snooze", title: t("Snooze 1 h") }],
  });
}

function reminderTag(taskId) {
  return `task-${taskId}`;
}

function whenText(iso, lang) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const tag = (self.navigator.languages || []).find((l) => l.slice(0, 2) === lang) || lang;
  return date.toLocaleString(tag, { dateStyle: "medium", timeStyle: "short" });
}

// Only ever a page of this app, whatever the message says.
function appUrl(url) {
  try {
    const target = new URL(url || "/#/tasks", self.location.origin);
    if (target.origin === self.location.origin) return target.href;
  } catch {
    // fall through
  }
  return new URL("/#/tasks", self.location.origin).href;
}

async function openApp(url) {
  const target = appUrl(url);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const page = windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (page) {
    await page.focus();
    page.postMessage({ type: "OPEN", url: target });
    return;
  }
  await self.clients.openWindow(target);
}

// Done or Snooze 1 h on the task, written locally; answers "saved", "unchanged" (already
// done, say) or "missing" (the task is not on this device: signed out, another user).
async function applyReminderAction(action, reminder) {
  if (action !== "done" && action !== "snooze") throw new Error(`unknown action ${action}`);
  const taskId = reminder.task_id;
  if (typeof taskId !== "string") throw new Error("the reminder names no task");
  const change = (task) => (action === "done" ? doneFields(task) : snoozeFields(task, Date.now()));
  const outcome = await writeTaskChange(taskId, change);
  for (const shown of await self.registration.getNotifications({ tag: reminderTag(taskId) })) shown.close();
  if (outcome === "saved") {
    // Open tabs redraw (js/events.js listens on this channel) and send the change.
    if ("BroadcastChannel" in self) {
      const channel = new BroadcastChannel("fieldcrm");
      channel.postMessage({ type: "data" });
      channel.close();
    }
    await tellPages({ type: "SYNC_NOW" });
  }
  return outcome;
}

function doneFields(task) {
  return task.done ? null : { done: true };
}

// As js/components.js snooze(): the reminder moves an hour on from the later of its time
// and now (so it does not fire again at once), the due time an hour on.
function snoozeFields(task, now) {
  if (task.done) return null;
  const remind = task.remind_at ? new Date(task.remind_at).getTime() : now;
  const fields = { remind_at: new Date(Math.max(remind, now) + HOUR_MS).toISOString() };
  if (task.due_at) fields.due_at = new Date(new Date(task.due_at).getTime() + HOUR_MS).toISOString();
  return fields;
}

async function tellPages(message) {
  const windows = await self.clients.matchAll({ type: "window" });
  for (const page of windows) page.postMessage(message);
}

// Open the app's database as it is; never create it (the app makes it, with its stores).
function openAppDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(APP_DB);
    req.onupgradeneeded = () => req.transaction.abort();
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => db.close(); // a newer app upgrading: step aside
      resolve(db);
    };
    req.onerror = () => reject(req.error);
  });
}

// One readwrite transaction over tasks, outbox and meta, as records.js saveWrites: the
// next mid, a ticked clock, the outbox entry and the optimistic row, or nothing at all.
// js/records.js baseOf: the server's row under a local one (`_base: true`: the row itself).
function baseOf(row) {
  if (!row || !row._base) return null;
  if (row._base !== true) return row._base;
  return Object.fromEntries(Object.entries(row).filter(([key]) => !key.startsWith("_")));
}

async function writeTaskChange(taskId, change) {
  let db;
  try {
    db = await openAppDb();
  } catch {
    return "missing"; // the app never ran in this browser profile
  }
  try {
    return await new Promise((resolve, reject) => {
      // A first sync's rows may still be packed (js/db.js, "packs"): the task may be in one.
      const packed = db.objectStoreNames.contains("packs");
      const tx = db.transaction(["tasks", "outbox", "meta", ...(packed ? ["packs"] : [])], "readwrite");
      const tasks = tx.objectStore("tasks");
      const meta = tx.objectStore("meta");
      let outcome = "missing";
      const rowReq = tasks.get(taskId);
      const packsReq = packed ? tx.objectStore("packs").index("table").getAll("tasks") : null;
      const midReq = meta.get("next_mid");
      const clockReq = meta.get("hlc");
      // Requests in a transaction complete in order: the row and the mid are in by now.
      clockReq.onsuccess = () => {
        const row = rowReq.result ?? packedRow(packsReq && packsReq.result, taskId);
        if (!row || row._deleted) return;
        const fields = change(row);
        if (!fields) {
          outcome = "unchanged";
          return;
        }
        const mid = midReq.result || 1;
        const clock = tick(clockReq.result, Date.now());
        tx.objectStore("outbox").add({
          mid,
          table: "tasks",
          id: taskId,
          op: "upsert",
          fields,
          base_seq: row._seq ?? null,
          hlc: clock,
        });
        tasks.put({ ...row, ...fields, _base: baseOf(row) });
        meta.put(mid + 1, "next_mid");
        meta.put(clock, "hlc");
        outcome = "saved";
      };
      tx.oncomplete = () => resolve(outcome);
      tx.onabort = () => reject(tx.error || new Error("the transaction was aborted"));
    });
  } finally {
    db.close();
  }
}

// js/db.js: the newest pack's copy of a row (packs come oldest first), or undefined.
function packedRow(packs, id) {
  let found;
  for (const pack of packs || []) for (const row of pack.rows) if (row.id === id) found = row;
  return found;
}

// js/hlc.js tick(): never behind the last clock; the counter breaks ties and carries into
// the next millisecond rather than pass its bound (2^31 - 1).
function tick(last, now) {
  const valid =
    Array.isArray(last) && last.length === 2 && Number.isInteger(last[0]) &&
    Number.isInteger(last[1]) && last[0] >= 0 && last[0] < 2 ** 53 - 1 && last[1] >= 0 &&
    last[1] <= 2 ** 31 - 1;
  const prev = valid ? last : [0, 0];
  const ms = Math.max(now, prev[0]);
  if (ms !== prev[0]) return [ms, 0];
  return prev[1] >= 2 ** 31 - 1 ? [ms + 1, 0] : [ms, prev[1] + 1];
}
