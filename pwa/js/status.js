// The sync status, everywhere: the header badge, an aria-live line for screen readers, and
// any element a screen binds to it.

import { on } from "./events.js";
import { formatTime } from "./ui.js";

// Never "Ready": idle only means no sync is running; it says whether one ever has.
const STATE_TEXT = {
  idle: "Online",
  offline: "Offline",
  syncing: "Syncing…",
  synced: "Synced",
  retrying: "Retrying…",
  error: "Sync error",
  blocked: "Sync stuck",
  limited: "Server busy",
  quota: "Storage full",
  "signed-out": "Not signed in",
  upgrade: "Update needed",
};

export function stateText(state, status = null) {
  if (state === "idle" && status && !status.lastSyncAt) return "Not synced yet";
  return STATE_TEXT[state] || state;
}

export function syncText(status, { long = false } = {}) {
  const parts = [stateText(status.state, status)];
  if (status.pending) parts.push(`${status.pending} pending`);
  if (status.rejected) parts.push(`${status.rejected} rejected`);
  if (long) {
    parts.push(status.lastSyncAt ? `last sync ${formatTime(status.lastSyncAt)}` : "not synced yet");
    // A held sync's sentence is in the sync-held notice already.
    if (status.message && !["limited", "quota"].includes(status.state)) parts.push(status.message);
  }
  return parts.join(" · ");
}

// What a sync held back by a server limit means for the rep's changes (docs/limits.md):
// none of them is lost, and when they will go.
export function heldMessage(state, pending, retryAt) {
  const changes = pending === 1 ? "Your unsent change is" : `Your ${pending} unsent changes are`;
  if (state === "limited") {
    const seconds = Math.max(1, Math.round(((retryAt || Date.now()) - Date.now()) / 1000));
    const when =
      seconds < 90 ? `in about ${seconds} second${seconds === 1 ? "" : "s"}` : `in about ${Math.round(seconds / 60)} minutes`;
    return `The server is busy. ${changes} kept on this phone and will be sent ${when}.`;
  }
  if (state === "quota") {
    return (
      `Your team's storage on the server is full. ${changes} kept on this phone and will be ` +
      "sent once there is room: a manager can delete records the team no longer needs."
    );
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
    pending.textContent = `${status.pending} pending`;
    pending.hidden = status.pending === 0;
    rejected.dataset.count = String(status.rejected);
    rejected.textContent = `${status.rejected} rejected`;
    rejected.hidden = status.rejected === 0;
    last.textContent = status.lastSyncAt ? formatTime(status.lastSyncAt) : "";
    last.title = status.lastSyncAt ? `Last sync ${new Date(status.lastSyncAt).toLocaleString()}` : "";
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
    if (now.state === "offline") return "You are offline. Changes are saved on this phone.";
    if (before.state === "offline") return "Back online.";
    if (["error", "blocked", "signed-out", "upgrade", "limited", "quota"].includes(now.state)) {
      return `${stateText(now.state)}. ${now.message || ""}`.trim();
    }
  }
  if (now.rejected > before.rejected) {
    const n = now.rejected - before.rejected;
    return `${n} change${n === 1 ? " was" : "s were"} rejected by the server.`;
  }
  if (before.pending > 0 && now.pending === 0 && now.state === "synced") {
    return "All changes synced.";
  }
  return null;
}
