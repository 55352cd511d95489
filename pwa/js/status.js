// The sync status, everywhere: the header badge, an aria-live line for screen readers, and
// any element a screen binds to it.

import { t, tn } from "./i18n.js";
import { on } from "./events.js";
import { formatDateTime, formatTime } from "./ui.js";

// Never "Ready": idle only means no sync is running; it says whether one ever has.
const STATE_TEXT = {
  idle: t("Online"),
  offline: t("Offline"),
  syncing: t("Syncing…"),
  synced: t("Synced"),
  retrying: t("Retrying…"),
  error: t("Sync error"),
  blocked: t("Sync stuck"),
  limited: t("Server busy"),
  quota: t("Storage full"),
  "signed-out": t("Not signed in"),
  upgrade: t("Update needed"),
};

export function stateText(state, status = null) {
  if (state === "idle" && status && !status.lastSyncAt) return t("Not synced yet");
  return STATE_TEXT[state] || state;
}

export function syncText(status, { long = false } = {}) {
  const parts = [stateText(status.state, status)];
  if (status.pending) parts.push(pendingText(status.pending));
  if (status.rejected) parts.push(rejectedText(status.rejected));
  if (long) {
    parts.push(status.lastSyncAt ? t("last sync {time}", { time: formatTime(status.lastSyncAt) }) : t("not synced yet"));
    // A held sync's sentence is in the sync-held notice already.
    if (status.message && !["limited", "quota"].includes(status.state)) parts.push(status.message);
  }
  return parts.join(" · ");
}

const pendingText = (n) => tn("{n} pending", "{n} pending", n);
const rejectedText = (n) => tn("{n} rejected", "{n} rejected", n);

// What a sync held back by a server limit means for the rep's changes (docs/limits.md):
// none of them is lost, and when they will go.
export function heldMessage(state, pending, retryAt) {
  if (state === "limited") {
    const seconds = Math.max(1, Math.round(((retryAt || Date.now()) - Date.now()) / 1000));
    const when =
      seconds < 90
        ? tn("in about {n} second", "in about {n} seconds", seconds)
        : tn("in about {n} minute", "in about {n} minutes", Math.round(seconds / 60));
    return tn(
      "The server is busy. Your unsent change is kept on this phone and will be sent {when}.",
      "The server is busy. Your {n} unsent changes are kept on this phone and will be sent {when}.",
      pending, { when });
  }
  if (state === "quota") {
    return tn(
      "Your team's storage on the server is full. Your unsent change is kept on this phone and will be sent once there is room: a manager can delete records the team no longer needs.",
      "Your team's storage on the server is full. Your {n} unsent changes are kept on this phone and will be sent once there is room: a manager can delete records the team no longer needs.",
      pending);
  }
  return "";
}

export function startBadge(root) {
  const badge = root.querySelector("[data-testid=sync-badge]");
  const state = badge.querySelector("[data-testid=sync-state]");
  const pending = badge.querySelector("[data-testid=pending-count]");
  const rejected = root.querySelector("[data-testid=rejected-indicator]");
  const last = badge.querySelector("[data-testid=last-sync]");
  const live = root.querySelector("[data-testid=live-status]");
  const held = root.querySelector("[data-testid=sync-held]");
  const heldText = held.querySelector("[data-testid=sync-held-text]");
  let previous = null;

  on("sync", (status) => {
    badge.dataset.state = status.state;
    state.textContent = stateText(status.state, status);
    badge.title = syncText(status, { long: true });
    pending.dataset.count = String(status.pending);
    pending.textContent = pendingText(status.pending);
    pending.hidden = status.pending === 0;
    rejected.dataset.count = String(status.rejected);
    rejected.textContent = rejectedText(status.rejected);
    rejected.hidden = status.rejected === 0;
    last.textContent = status.lastSyncAt ? formatTime(status.lastSyncAt) : "";
    last.title = status.lastSyncAt ? t("Last sync {when}", { when: formatDateTime(new Date(status.lastSyncAt).toISOString()) }) : "";
    const holding = (status.state === "limited" || status.state === "quota") && status.pending > 0;
    held.hidden = !holding;
    held.dataset.state = holding ? status.state : "none";
    if (holding) heldText.textContent = heldMessage(status.state, status.pending, status.retryAt);
    const message = announcement(previous, status);
    if (message) live.textContent = message;
    previous = status;
  });
}

// Say what matters, not every 30-second round trip.
function announcement(before, now) {
  if (!before) return null;
  if (now.state !== before.state) {
    if (now.state === "offline") return t("You are offline. Changes are saved on this phone.");
    if (before.state === "offline") return t("Back online.");
    if (["error", "blocked", "signed-out", "upgrade", "limited", "quota"].includes(now.state)) {
      return `${stateText(now.state)}. ${now.message || ""}`.trim();
    }
  }
  if (now.rejected > before.rejected) {
    const n = now.rejected - before.rejected;
    return tn("{n} change was rejected by the server.", "{n} changes were rejected by the server.", n);
  }
  if (before.pending > 0 && now.pending === 0 && now.state === "synced") {
    return t("All changes synced.");
  }
  return null;
}
