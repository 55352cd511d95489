// The manager's figures. The team report and the devices list come from the server
// (docs/reports.md) and are kept in meta "team_reports" with the time they were fetched, so
// the Team screen still shows the last ones offline, marked as such. The feed, the check-ins
// and what hangs off an account are read from the rows this phone has synced.

import { apiFetch, errorDetail, NetworkError } from "./api.js";
import { read, write } from "./db.js";
import { allRows } from "./records.js";
import { me, session } from "./session.js";

const KEPT_REPORTS = 6;
const CACHE_KEY = "team_reports";
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
  if (!DATE.test(from || "") || !DATE.test(to || "")) return "Give both dates.";
  if (from > to) return "The first date is after the last.";
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  return days > MAX_RANGE_DAYS ? "A range is at most two years." : null;
}

async function keptReports() {
  const kept = await read(["meta"], (s) => s.meta.get(CACHE_KEY));
  return Array.isArray(kept) ? kept : [];
}

async function keep(entry) {
  await write(["meta"], async (s) => {
    const kept = ((await s.meta.get(CACHE_KEY)) || []).filter((e) => e.key !== entry.key);
    await s.meta.put([entry, ...kept].slice(0, KEPT_REPORTS), CACHE_KEY);
  });
}

// {source: "server" | "cache" | "none" | "refused", report, devices, fetched_at, error}
// "cache": no answer (offline, or the server failed): the kept report for this range, else
// the latest kept one. "refused": the server said no (a bad range, not a manager).
export async function loadReport({ from, to, days }) {
  const key = `${from}/${to}/${days}`;
  const token = session().token;
  let error = null;
  if (token && navigator.onLine) {
    const query = new URLSearchParams({ from, to, not_visited_days: String(days) });
    try {
      const [report, devices] = await Promise.all([
        apiFetch(`/api/reports/team?${query}`, { token }),
        apiFetch("/api/team/devices", { token }),
      ]);
      if (report.status === 200 && report.data) {
        const entry = { key, fetched_at: Date.now(), report: report.data,
          devices: devices.status === 200 && devices.data ? devices.data.devices : null };
        await keep(entry);
        return { source: "server", ...entry };
      }
      error = errorDetail(report, `The server answered ${report.status}.`);
      if (report.status >= 400 && report.status < 500 && report.status !== 408 && report.status !== 429) {
        return { source: "refused", error };
      }
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      error = err.message;
    }
  }
  const kept = await keptReports();
  const entry = kept.find((e) => e.key === key) || kept[0];
  return entry ? { source: "cache", error, ...entry } : { source: "none", error };
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
      const t = new Date(v.started_at).getTime();
      return t >= start && t < end;
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
        : { ok: false, error: errorDetail(answer, `The server answered ${answer.status}.`) };
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      outcome = { ok: false, error: err.message };
    }
    results.push({ account, ...outcome });
    progress(results.length, accounts.length);
  }
  return results;
}
