// The manager's figures. The team report, the devices list and the campaigns come from the
// server (docs/reports.md, docs/campaigns.md) and are kept in meta "kept_answers" with the
// time they were fetched, so the screens still show the last ones offline, marked as such.
// The feed, the check-ins and what hangs off an account are read from the rows synced.

import { t } from "./i18n.js";
import { apiFetch, errorDetail, NetworkError } from "./api.js";
import { read, write } from "./db.js";
import { allRows } from "./records.js";
import { me, session } from "./session.js";

export const STAGE_WEIGHTS = { lead: 0.1, qualified: 0.25, proposal: 0.5, negotiation: 0.75 };
export const MAX_RANGE_DAYS = 731;

export const isManager = (user = me()) => !!user && (user.role === "manager" || user.role === "admin");

const pad = (n) => String(n).padStart(2, "0");
export const isoDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

function addDays(d, n) {
  const next = new Date(d);
  next.setDate(next.getDate() + n);
  return next;
}

// The picker's ranges, in the phone's calendar: a week starts on Monday, and the current
// week and month run to today.
export function presetRange(preset, now = new Date()) {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const monday = addDays(today, -((today.getDay() + 6) % 7));
  if (preset === "last_week") return { from: isoDate(addDays(monday, -7)), to: isoDate(addDays(monday, -1)) };
  if (preset === "this_month") return { from: isoDate(new Date(today.getFullYear(), today.getMonth(), 1)), to: isoDate(today) };
  return { from: isoDate(monday), to: isoDate(today) };
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

// null when the range is one the server takes, else the sentence saying why not.
export function rangeProblem(from, to) {
  if (!DATE.test(from || "") || !DATE.test(to || "")) return t("Give both dates.");
  if (from > to) return t("The first date is after the last.");
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  return days > MAX_RANGE_DAYS ? t("A range is at most two years.") : null;
}

const KEPT = "kept_answers";

// GET `path` online, kept in meta "kept_answers" (the 12 latest) for offline: {source:
// "server" | "cache" | "none" | "refused" (a 4xx: the server said no), data, fetched_at, error}.
export async function keptGet(path) {
  let error = null;
  if (navigator.onLine) {
    try {
      const got = await apiFetch(path, { token: session().token });
      if (got.status === 200) {
        const entry = { path, data: got.data, fetched_at: Date.now() };
        await write(["meta"], async (s) => {
          const kept = ((await s.meta.get(KEPT)) || []).filter((e) => e.path !== path);
          await s.meta.put([entry, ...kept].slice(0, 12), KEPT);
        });
        return { source: "server", ...entry };
      }
      error = errorDetail(got, t("The server answered {status}.", { status: got.status }));
      if (got.status < 500 && got.status !== 408 && got.status !== 429) return { source: "refused", error };
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      error = err.message;
    }
  }
  const entry = await kept((p) => p === path);
  return entry ? { source: "cache", error, ...entry } : { source: "none", error };
}

// The newest answer kept whose path passes `test`.
async function kept(test) {
  return ((await read(["meta"], (s) => s.meta.get(KEPT))) || []).find((e) => test(e.path));
}

// {source: "server" | "cache" | "none" | "refused", report, devices, fetched_at, error}
// "cache": no answer (offline, or the server failed): the kept report for this range, else
// the latest kept one (`same`: for this range). "refused": the server said no.
export async function loadReport({ from, to, days }) {
  const path = `/api/reports/team?${new URLSearchParams({ from, to, not_visited_days: String(days) })}`;
  const [got, devices] = await Promise.all([keptGet(path), keptGet("/api/team/devices")]);
  const entry = got.source === "none" ? { ...got, ...(await kept((p) => p.startsWith("/api/reports/team?"))) } : got;
  const source = got.source === "none" && entry.data ? "cache" : got.source;
  return { source, error: got.error, same: entry.path === path, report: entry.data, fetched_at: entry.fetched_at,
    devices: devices.data ? devices.data.devices : null };
}

// The reps' rows as CSV (GET /api/reports/team.csv with the bearer token), saved as a file.
export async function downloadCsv({ from, to, days }) {
  const query = new URLSearchParams({ from, to, not_visited_days: String(days) });
  let response;
  try {
    response = await fetch(`/api/reports/team.csv?${query}`, { cache: "no-store", credentials: "omit",
      headers: { Authorization: `Bearer ${session().token}` } });
  } catch {
    throw new Error(t("No connection: the CSV comes from the server."));
  }
  if (!response.ok) throw new Error(t("The server answered {status}.", { status: response.status }));
  const url = URL.createObjectURL(await response.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: `team-report-${from}-${to}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

const byNewest = (a, b) => String(b.at).localeCompare(String(a.at));

// The team's latest visits and notes on this phone, newest first.
export async function teamFeed(limit = 15) {
  const [visits, notes] = await Promise.all([allRows("visits"), allRows("notes")]);
  return [
    ...visits.map((v) => ({ kind: "visit", id: v.id, at: v.started_at, author_id: v.user_id,
      account_id: v.account_id, text: v.summary || "", outcome: v.outcome, row: v })),
    ...notes.map((n) => ({ kind: "note", id: n.id, at: n.created_at || new Date().toISOString(),
      author_id: n.author_id, account_id: n.account_id, text: n.body || "" })),
  ].sort(byNewest).slice(0, limit);
}

// Today's verified visits that have a position (where the visit was logged, nothing else).
export async function todaysCheckins(now = new Date()) {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const end = addDays(new Date(start), 1).getTime();
  return (await allRows("visits"))
    .filter((v) => v.verification === "verified" && typeof v.lat === "number" && typeof v.lng === "number")
    .filter((v) => {
      const at = new Date(v.started_at).getTime();
      return at >= start && at < end;
    })
    .sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
}

export const HANGING = ["contacts", "visits", "notes", "tasks", "deals"];

// How many rows of each table hang off these accounts, on this phone.
export async function hangingOff(accountIds) {
  const ids = new Set(accountIds);
  const counts = {};
  await read(HANGING, async (s) => {
    for (const table of HANGING) {
      const rows = await s[table].getAll();
      counts[table] = rows.filter((r) => !r._deleted && ids.has(r.account_id)).length;
    }
  });
  return counts;
}

// POST /api/accounts/{id}/reassign for each account in turn; progress(done, total) after each.
// Answers [{account, ok, error}].
export async function reassign(accounts, ownerId, progress) {
  const token = session().token;
  const results = [];
  for (const account of accounts) {
    let outcome;
    try {
      const answer = await apiFetch(`/api/accounts/${encodeURIComponent(account.id)}/reassign`,
        { method: "POST", token, body: { owner_id: ownerId } });
      outcome = answer.status === 200 ? { ok: true }
        : { ok: false, error: errorDetail(answer, t("The server answered {status}.", { status: answer.status })) };
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      outcome = { ok: false, error: err.message };
    }
    results.push({ account, ...outcome });
    progress(results.length, accounts.length);
  }
  return results;
}
