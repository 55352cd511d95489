// Who is signed in on this device. The token and user live in the meta store so the
// app opens signed in, offline. Signing out empties every store, whatever the network does.

import { t } from "./i18n.js";
import { apiFetch, errorDetail, NetworkError } from "./api.js";
import { clearAll, read, write } from "./db.js";
import { emit } from "./events.js";

const USERS_MAX_AGE_MS = 60 * 60 * 1000;

let current = { token: null, user: null };

export function session() {
  return current;
}

export function me() {
  return current.user;
}

export async function loadSession() {
  const [token, user] = await read(["meta"], (s) =>
    Promise.all([s.meta.get("token"), s.meta.get("user")]),
  );
  current = { token: token || null, user: user || null };
  await ensureClientId();
  return current;
}

// One id per install. Sign-out empties the meta store, so the next sign-in starts a fresh
// client with mids from 1: the server keeps mids per (user, client_id), and reusing an old
// client_id with a reset counter would make new writes look like replays.
export async function ensureClientId() {
  return write(["meta"], async (s) => {
    let id = await s.meta.get("client_id");
    if (!id) {
      id = crypto.randomUUID();
      await s.meta.put(id, "client_id");
      await s.meta.put(1, "next_mid");
    }
    return id;
  });
}

// Answers {ok: true} | {ok: false, error} | {ok: false, blocked: {...}} when another
// user's unsent writes are still on the device.
export async function login(username, password) {
  let result;
  try {
    result = await apiFetch("/api/auth/login", {
      method: "POST",
      body: { username, password },
    });
  } catch (err) {
    if (err instanceof NetworkError) {
      return { ok: false, error: t("You are offline. Signing in needs a connection.") };
    }
    throw err;
  }
  if (result.status === 401) return { ok: false, error: t("Wrong username or password.") };
  if (result.status === 429) {
    return { ok: false, error: errorDetail(result, t("Too many attempts. Wait a minute and retry.")) };
  }
  const ok = result.status >= 200 && result.status < 300;
  if (!ok || !result.data || !result.data.token) {
    return { ok: false, error: errorDetail(result, t("Sign-in failed ({status}).", { status: result.status })) };
  }
  const { token, user } = result.data;
  const [previous, pending] = await read(["meta", "outbox"], (s) =>
    Promise.all([s.meta.get("user"), s.outbox.count()]),
  );
  if (previous && previous.id !== user.id) {
    if (pending > 0) {
      return { ok: false, blocked: { token, user, previous, pending } };
    }
    await clearAll();
  }
  await adopt(token, user);
  return { ok: true };
}

// After the user agreed to drop another user's unsent writes.
export async function discardAndAdopt(blocked) {
  await clearAll();
  await adopt(blocked.token, blocked.user);
}

async function adopt(token, user) {
  await ensureClientId();
  await write(["meta"], async (s) => {
    await s.meta.put(token, "token");
    await s.meta.put(user, "user");
  });
  current = { token, user };
  emit("session", current);
  refreshUsers(true).catch(() => {});
}

export async function logout() {
  const token = current.token;
  if (token && navigator.onLine) {
    try {
      await apiFetch("/api/auth/logout", { method: "POST", token, timeoutMs: 5000 });
    } catch {
      // Offline or no answer: the device is wiped anyway; the token expires on the server.
    }
  }
  await clearAll();
  current = { token: null, user: null };
  await ensureClientId();
  emit("session", current);
  emit("data", null);
}

// The server said 401: back to sign-in, keeping the outbox (and the user, so the same
// person signing in again carries on where they were).
export async function expireSession() {
  await write(["meta"], (s) => s.meta.delete("token"));
  current = { token: null, user: current.user };
  emit("session", { ...current, expired: true });
}

// The team's users, for the assignee picker and for names in the conflicts inbox.
export async function refreshUsers(force = false) {
  if (!current.token) return;
  const cached = await read(["meta"], (s) => s.meta.get("users"));
  if (!force && cached && Date.now() - cached.fetched_at < USERS_MAX_AGE_MS) return;
  const result = await apiFetch("/api/users", { token: current.token });
  if (result.status >= 200 && result.status < 300 && result.data && Array.isArray(result.data.users)) {
    await write(["meta"], (s) =>
      s.meta.put({ fetched_at: Date.now(), users: result.data.users }, "users"),
    );
    emit("data", { users: true });
  }
}

export async function teamUsers() {
  const cached = await read(["meta"], (s) => s.meta.get("users"));
  const users = cached ? cached.users : [];
  if (current.user && !users.some((u) => u.id === current.user.id)) users.push(current.user);
  return users;
}

export async function userNames() {
  const names = new Map();
  for (const u of await teamUsers()) names.set(u.id, u.username);
  return names;
}
