// The team report computed on this phone, for a period the server cannot answer now
// (offline, or unreachable) and that no kept answer covers (docs/reports.md, "In the app,
// and offline"). The same rules as server/reports/services.py, over the rows the server
// last sent this phone (each row's `_base`): the figures are what the server would have
// answered at this phone's last sync. This phone's unsent changes are left out, and the
// screen says how many there are. Loaded on demand by the Team screen.

import { read } from "./db.js";
import { baseOf } from "./records.js";
import { me, teamUsers } from "./session.js";
import { STAGE_WEIGHTS } from "./team.js";

const DAY_MS = 86_400_000;
const LIMIT = 500;
const TABLES = ["accounts", "visits", "notes", "tasks", "deals"];

// Python's round(x, 2): the nearest cent to the float's exact value (toFixed), and an
// exact half cent (only a multiple of 1/8 can be one) to the even cent.
export function cents(x) {
  if (!Number.isInteger(x * 8) || Number.isInteger(x * 100)) return Number(x.toFixed(2));
  const f = Math.floor(x * 100);
  return (f % 2 ? f + 1 : f) / 100;
}

function rounded(sums) {
  return Object.fromEntries(Object.keys(sums).sort().map((c) => [c, cents(sums[c])]));
}

function add(sums, deal) {
  if (deal.amount === null || deal.amount === undefined) return;
  const key = deal.currency || "XXX";
  sums[key] = (sums[key] || 0) + Number(deal.amount);
}

// The calendar day (YYYY-MM-DD) of an instant in `zone`: a day is [its local midnight,
// the next one), as the server counts.
function dayIn(zone) {
  const format = new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
  return (ms) => {
    const p = Object.fromEntries(format.formatToParts(ms).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}`;
  };
}

function daysOf(from, to) {
  const out = [];
  for (let ms = Date.parse(`${from}T00:00:00Z`); ms <= Date.parse(`${to}T00:00:00Z`); ms += DAY_MS) {
    out.push(new Date(ms).toISOString().slice(0, 10));
  }
  return out;
}

const order = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// The report (the server's TeamReport, as JSON) from `rows` ({table: [row]}, the server's
// rows), the team's `members` ([{id, username, role, active}]) and `devices` (the kept
// devices list, or null), at `now` (ms, the server's clock as the phone knows it).
export function computeReport(rows, { team, from, to, zone, days, now, members, devices }) {
  const dayOf = dayIn(zone);
  const lo = Date.parse(`${from}T00:00:00Z`) - 2 * DAY_MS;
  const hi = Date.parse(`${to}T00:00:00Z`) + 3 * DAY_MS;
  // The day of `iso` if it falls in [from, to] in the zone, else null.
  const within = (iso) => {
    const ms = iso ? Date.parse(iso) : NaN;
    if (!(ms >= lo && ms < hi)) return null;
    const day = dayOf(ms);
    return day >= from && day <= to ? day : null;
  };
  const accounts = rows.accounts.filter((a) => !a.team_id || a.team_id === team);
  const ids = new Set(accounts.map((a) => a.id));
  const [visits, notes, tasks, deals] = ["visits", "notes", "tasks", "deals"]
    .map((table) => rows[table].filter((r) => ids.has(r.account_id)));
  const reps = new Map([...members]
    .sort((a, b) => order(a.username, b.username) || order(a.id, b.id))
    .map((m) => [m.id, { user_id: m.id, username: m.username, role: m.role, active: m.active !== false,
      visits: 0, verified_visits: 0, accounts_visited: 0, new_accounts: 0, notes: 0, tasks_done: 0,
      deals_won: 0, won_amount: {}, open_pipeline: {}, last_sync_at: null, pending: null }]));
  const perDay = new Map(daysOf(from, to).map((date) => [date, { date, visits: 0, verified_visits: 0 }]));
  const seen = new Map();
  for (const v of visits) {
    const rep = reps.get(v.user_id);
    const day = rep && within(v.started_at);
    if (!day) continue;
    const verified = v.verification === "verified" ? 1 : 0;
    rep.visits += 1;
    rep.verified_visits += verified;
    perDay.get(day).visits += 1;
    perDay.get(day).verified_visits += verified;
    if (!seen.has(rep)) seen.set(rep, new Set());
    seen.get(rep).add(v.account_id);
  }
  for (const [rep, visited] of seen) rep.accounts_visited = visited.size;
  const count = (list, who, figure, when, also = () => true) => {
    for (const r of list) {
      const rep = reps.get(r[who]);
      if (rep && also(r) && within(r[when])) rep[figure] += 1;
    }
  };
  count(accounts, "created_by", "new_accounts", "created_at");
  count(notes, "author_id", "notes", "created_at");
  count(tasks, "assignee_id", "tasks_done", "done_at", (task) => task.done === true);
  const stages = Object.fromEntries(Object.keys(STAGE_WEIGHTS).map((stage) => [stage, { stage, deals: 0, amount: {} }]));
  for (const d of deals) {
    const rep = reps.get(d.owner_id);
    if (stages[d.stage]) {
      stages[d.stage].deals += 1;
      add(stages[d.stage].amount, d);
      if (rep) add(rep.open_pipeline, d);
    } else if (rep && d.stage === "won"
      && (d.close_date ? d.close_date >= from && d.close_date <= to : within(d.stage_changed_at))) {
      rep.deals_won += 1;
      add(rep.won_amount, d);
    }
  }
  const cutoff = now - days * DAY_MS;
  const at = (a) => Date.parse(a.last_visit_at);
  const stale = accounts.filter((a) => !a.last_visit_at || at(a) < cutoff).sort((a, b) =>
    (!!a.last_visit_at - !!b.last_visit_at) || (a.last_visit_at ? at(a) - at(b) : 0)
    || order(a.name, b.name) || order(a.id, b.id));
  let complete = null;
  for (const d of devices || []) {
    const rep = reps.get(d.user_id);
    if (!rep) continue;
    if (d.last_sync_at) {
      if (!rep.last_sync_at || Date.parse(d.last_sync_at) > Date.parse(rep.last_sync_at)) rep.last_sync_at = d.last_sync_at;
      if (rep.active && (!complete || Date.parse(d.last_sync_at) < Date.parse(complete))) complete = d.last_sync_at;
    }
    if (d.pending !== null && d.pending !== undefined) rep.pending = Math.max(rep.pending || 0, d.pending);
  }
  for (const rep of reps.values()) {
    rep.won_amount = rounded(rep.won_amount);
    rep.open_pipeline = rounded(rep.open_pipeline);
  }
  return {
    team_id: team, from, to, timezone: zone,
    reps: [...reps.values()],
    days: [...perDay.values()],
    pipeline: Object.values(stages).map((s) => ({ stage: s.stage, deals: s.deals, amount: rounded(s.amount),
      weighted: rounded(Object.fromEntries(Object.entries(s.amount).map(([c, a]) => [c, a * STAGE_WEIGHTS[s.stage]]))) })),
    not_visited: stale.slice(0, LIMIT).map((a) => ({ account_id: a.id, name: a.name, owner_id: a.owner_id ?? null,
      last_visit_at: a.last_visit_at ?? null, status: a.status, lat: a.lat ?? null, lng: a.lng ?? null })),
    complete_through: complete,
    generated_at: new Date(now).toISOString(),
    not_visited_days: days,
  };
}

// The report for {from, to, days} from what this phone holds: {report, devices, unsent,
// synced_at}, or null when this phone has never synced (it holds nothing to count).
export async function reportHere({ from, to, days }) {
  const got = await read([...TABLES, "outbox", "meta"], (s) => Promise.all([
    ...TABLES.map((table) => s[table].getAll()),
    s.outbox.count(), s.meta.get("last_sync_at"), s.meta.get("server_offset_ms"), s.meta.get("kept_answers"),
  ]));
  const [unsent, syncedAt, offset, keptAnswers] = got.slice(TABLES.length);
  if (!syncedAt) return null;
  const rows = Object.fromEntries(TABLES.map((table, n) => [table, got[n].map(baseOf).filter(Boolean)]));
  const kept = keptAnswers || [];
  // The latest report kept says the org's time zone and who was in the team, inactive
  // users too; the users list says who is in it and active now.
  const last = (kept.find((e) => e.path.startsWith("/api/reports/team?")) || {}).data;
  const devices = (kept.find((e) => e.path === "/api/team/devices") || {}).data;
  const team = (me() || {}).team_id || (last && last.team_id);
  const members = new Map((last ? last.reps : []).map((r) => [r.user_id, { id: r.user_id, username: r.username, role: r.role, active: r.active }]));
  for (const u of await teamUsers()) {
    if (!u.team_id || u.team_id === team) members.set(u.id, { ...u, active: true });
  }
  const zone = last ? last.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone;
  const report = computeReport(rows, { team, from, to, zone, days, now: Date.now() + (offset || 0),
    members: [...members.values()], devices: devices ? devices.devices : null });
  return { report, devices: devices ? devices.devices : null, unsent, synced_at: syncedAt };
}
