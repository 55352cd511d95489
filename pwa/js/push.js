// Push reminders on this device (the page's half; sw.js shows them and handles their
// buttons). The rep is asked once, when it makes sense: right after setting a reminder,
// never on load. Subscribing talks to the browser's push service and can take long (or
// never finish, e.g. in headless browsers), so nothing here is awaited by the UI.
// Where push is unavailable or refused, due tasks still show on Today.

import { t } from "./i18n.js";
import { apiFetch } from "./api.js";
import { read, write } from "./db.js";
import { on } from "./events.js";
import { session } from "./session.js";
import { h, section } from "./ui.js";

const ASKED = "push_asked"; // meta: when this device last asked for notifications

let refreshing = null;

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

// Wire up at boot. `syncNow` is the sync client's, called when the service worker has
// written a change (a notification's Done or Snooze) or the server has set reminded_at.
export function startPush({ syncNow }) {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      const data = event.data || {};
      if (data.type === "SYNC_NOW") syncNow();
      else if (data.type === "OPEN" && typeof data.url === "string") openInApp(data.url);
    });
  }
  if (!pushSupported()) return;
  on("outbox", (entries) => {
    if (Array.isArray(entries) && entries.some(setsReminder)) offerReminders();
  });
  on("session", (state) => {
    if (state && state.token) refreshSubscription();
    else if (state && !state.expired) forgetBrowserSubscription();
  });
  // Every start: the server's copy follows the signed-in user and any new keys.
  if (session().token) refreshSubscription();
}

function setsReminder(entry) {
  return entry && entry.table === "tasks" && entry.op === "upsert" && entry.fields && !!entry.fields.remind_at;
}

function openInApp(url) {
  const target = new URL(url, location.origin);
  if (target.origin === location.origin && target.hash) location.hash = target.hash;
}

// The first reminder the rep sets on this device: ask (once) whether it may notify.
async function offerReminders() {
  if (Notification.permission === "granted") {
    refreshSubscription();
    return;
  }
  if (Notification.permission !== "default") return;
  const asked = await read(["meta"], (s) => s.meta.get(ASKED));
  if (asked) return;
  await write(["meta"], (s) => s.meta.put(Date.now(), ASKED));
  await askPermission();
}

async function askPermission() {
  let answer;
  try {
    answer = await Notification.requestPermission();
  } catch (err) {
    console.warn("fieldcrm: notification permission request failed", err);
    return "default";
  }
  if (answer === "granted") refreshSubscription();
  return answer;
}

// Subscribe (or check the subscription) and tell the server. Resolves true when the
// server has it; never rejects. Concurrent calls share one attempt.
export function refreshSubscription() {
  if (!pushSupported() || Notification.permission !== "granted" || !session().token) {
    return Promise.resolve(false);
  }
  if (!refreshing) {
    refreshing = subscribe()
      .catch((err) => {
        console.warn("fieldcrm: push subscription failed", err);
        return false;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

async function subscribe() {
  const token = session().token;
  const registration = await navigator.serviceWorker.ready;
  const answer = await apiFetch("/api/push/vapid-public-key", { token });
  if (answer.status !== 200 || !answer.data || typeof answer.data.key !== "string") return false;
  const key = fromBase64Url(answer.data.key);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameBytes(subscription.options.applicationServerKey, key)) {
    // Made with another server key (a database restored from elsewhere): start over.
    await subscription.unsubscribe();
    subscription = null;
  }
  if (!subscription) {
    subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  const stored = await apiFetch("/api/push/subscriptions", {
    method: "POST",
    body: subscription.toJSON(),
    token: session().token,
  });
  if (stored.status !== 201) console.warn("fieldcrm: the server refused the push subscription", stored.data);
  return stored.status === 201;
}

// Signed out: this browser stops being anyone's. Unsubscribing makes the push service
// answer 410, and the server then deletes its copy (the token is already gone).
async function forgetBrowserSubscription() {
  try {
    const registration = await navigator.serviceWorker.getRegistration();
    const subscription = registration && (await registration.pushManager.getSubscription());
    if (subscription) await subscription.unsubscribe();
  } catch (err) {
    console.warn("fieldcrm: could not unsubscribe from push", err);
  }
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const other = new Uint8Array(buffer);
  return other.length === bytes.length && other.every((b, i) => b === bytes[i]);
}

// The "Me" screen's reminders card: its state, and a way to turn reminders on later.
export function pushSlot() {
  const status = h("p", { class: "hint" });
  const card = section(t("Reminders"), "push-slot", status);
  if (!pushSupported()) {
    status.textContent = t("This browser cannot show reminders. Due tasks are listed on Today.");
    return card;
  }
  const permission = Notification.permission;
  if (permission === "granted") {
    status.textContent = t("Reminders are on for this device.");
  } else if (permission === "denied") {
    status.textContent =
      t("Notifications are blocked for this app in the browser's settings. Due tasks are listed on Today.");
  } else {
    status.textContent = t("Get a notification on this device when a task's reminder is due.");
    const turnOn = h("button", { type: "button" }, t("Turn on reminders"));
    turnOn.addEventListener("click", async () => {
      turnOn.disabled = true;
      const answer = await askPermission();
      status.textContent = answer === "granted"
        ? t("Reminders are on for this device.")
        : t("Reminders stay off. Due tasks are listed on Today.");
      turnOn.hidden = true;
    });
    card.append(turnOn);
  }
  return card;
}
