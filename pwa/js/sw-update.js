// Service worker registration and the "update ready" prompt. A new worker waits until the
// rep taps "Reload": then it is told to SKIP_WAITING and the page reloads once it controls
// us. Nothing swaps under the rep's feet mid-visit.

import { t } from "./i18n.js";
import { on } from "./events.js";

const UPDATE_CHECK_MS = 60 * 60 * 1000;

let registration = null;
let userAskedForUpdate = false;

export async function shellVersion() {
  if (!("caches" in self)) return t("no cache");
  const keys = await caches.keys();
  return keys.find((k) => k.startsWith("fieldcrm-shell-")) || t("not installed");
}

export async function startServiceWorker(root) {
  const banner = root.querySelector("[data-testid=update-ready]");
  const reloadButton = root.querySelector("[data-testid=update-reload]");
  const required = root.querySelector("[data-testid=update-required]");
  const requiredButton = root.querySelector("[data-testid=update-required-reload]");

  on("upgrade-required", () => {
    required.hidden = false;
    if (registration) registration.update().catch(() => {});
  });
  requiredButton.addEventListener("click", () => applyUpdate());

  if (!("serviceWorker" in navigator)) return;

  // clients.claim() on the very first install also fires controllerchange: only reload
  // when the rep asked for the update.
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (userAskedForUpdate) location.reload();
  });

  const offer = (worker) => {
    if (!navigator.serviceWorker.controller) return; // first install: nothing to replace
    banner.hidden = false;
    banner.dataset.state = "waiting";
    reloadButton.onclick = () => {
      reloadButton.disabled = true;
      userAskedForUpdate = true;
      worker.postMessage({ type: "SKIP_WAITING" });
    };
  };

  try {
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" });
  } catch (err) {
    console.warn("fieldcrm: service worker registration failed", err);
    return;
  }
  if (registration.waiting) offer(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    if (!worker) return;
    worker.addEventListener("statechange", () => {
      if (worker.state === "installed") offer(worker);
    });
  });
  const check = () => registration.update().catch(() => {});
  setInterval(check, UPDATE_CHECK_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && navigator.onLine) check();
  });
}

// The server said this app is too old: take a waiting worker if there is one, else reload.
async function applyUpdate() {
  if (registration) {
    await registration.update().catch(() => {});
    const worker = registration.waiting || (await installed(registration.installing));
    if (worker) {
      userAskedForUpdate = true;
      worker.postMessage({ type: "SKIP_WAITING" });
      return;
    }
  }
  location.reload();
}

function installed(worker) {
  if (!worker) return Promise.resolve(null);
  return new Promise((resolve) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "installed") resolve(worker);
      else if (worker.state === "redundant") resolve(null);
    });
  });
}

// For tests and the debug handle: resolves once a service worker controls this page.
export function controlled() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(false);
  if (navigator.serviceWorker.controller) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.serviceWorker.addEventListener("controllerchange", () => resolve(true), { once: true });
  });
}
