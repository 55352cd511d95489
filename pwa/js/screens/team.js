// Team: the manager's home. Online it reads the team report and the devices list
// (docs/reports.md); offline it shows the last ones it fetched, marked with when they were
// computed. The feed comes from the rows this phone holds; the campaigns' progress from the
// server (the last answer, offline). Managers and admins only.

import { formatNumber, locale, t, tn } from "../i18n.js";
import { authorName } from "../components.js";
import { drawPoints, hasPosition, removeMap } from "../map.js";
import { allRows } from "../records.js";
import { replaceQuery } from "../router.js";
import { refreshUsers, userNames } from "../session.js";
import { currentStatus } from "../sync.js";
import { downloadCsv, isManager, loadReport, presetRange, rangeProblem, teamFeed } from "../team.js";
import { LABELS, empty, field, formatDate, formatDateTime, formatTime, h, link, section, toast } from "../ui.js";
import { campaignsSection } from "./campaign.js";

// Every sentence of the screen, in one place (a message catalogue replaces it later).
const T = {
  title: t("Team"),
  notManager: t("The Team screen is for managers."),
  range: t("Period"),
  presets: { this_week: t("This week"), last_week: t("Last week"), this_month: t("This month"), custom: t("Custom dates") },
  from: t("From"),
  to: t("To"),
  apply: t("Show"),
  loading: t("Fetching the figures…"),
  computed: (at, tz) => t("Figures computed at {when} (days in {zone}).", { when: at, zone: tz }),
  offline: t("Offline: the figures need a connection."),
  noAnswer: (why) => t("The server did not answer ({why}).", { why }),
  cached: (at) => t("Showing the report computed at {when}", { when: at }),
  cachedOther: (at, range) => t("Showing the last report kept, computed at {when}, for {range}", { when: at, range }),
  none: t("This phone has not fetched a report yet."),
  phone: (at, when, zone) => t("Computed on this phone at {time}, from its last sync ({when}); days in {zone}.",
    { time: at, when, zone }),
  phoneOffline: (at, when, zone) => t("Offline: computed on this phone at {time}, from its last sync ({when}); days in {zone}.",
    { time: at, when, zone }),
  notCounted: (n) => (n ? tn("{n} change made on this phone is not sent yet and not counted.",
    "{n} changes made on this phone are not sent yet and not counted.", n) : t("Nothing waits to be sent.")),
  newer: t("This phone has synced since. Compute the figures from what it holds"),
  csv: t("Download CSV"),
  complete: (at) => t("Complete through {when}: work on phones after that may not be in the figures yet.", { when: at }),
  completeNone: t("No phone of the team has synced since reports began."),
  reps: t("Activity per rep"),
  noReps: t("Nobody in the team yet."),
  figures: {
    visits: t("Visits"), verified_visits: t("Verified"), accounts_visited: t("Accounts visited"),
    new_accounts: t("New accounts"), notes: t("Notes"), tasks_done: t("Tasks done"), deals_won: t("Deals won"),
    won_amount: t("Won"), open_pipeline: t("Open pipeline"),
  },
  unsent: (n) => tn("{n} unsent on their phone", "{n} unsent on their phone", n),
  chart: t("Visits per day"),
  chartLabel: (total, verified, range) => t("Visits per day, {range}: {visits}, {verified} verified.",
    { range, visits: tn("{n} visit", "{n} visits", total), verified }),
  chartTable: t("Show the numbers"),
  day: t("Day"),
  verified: t("Verified"),
  other: t("Not verified"),
  dayTitle: (date, n, v) => t("{date}: {visits}, {verified} verified", { date, visits: tn("{n} visit", "{n} visits", n), verified: v }),
  leaders: t("Leaderboard"),
  rankBy: t("Rank by"),
  byVisits: t("Visits"),
  byWon: (cur) => t("Won amount ({currency})", { currency: cur }),
  pipeline: t("Pipeline"),
  stageLine: (n) => tn("{n} deal", "{n} deals", n),
  weighted: t("weighted"),
  forecast: t("Weighted forecast"),
  nothing: t("Nothing"),
  notVisited: t("Not visited"),
  notVisitedDays: t("Not visited in"),
  daysOption: (n) => tn("{n} day", "{n} days", n),
  notVisitedCount: (n, d) => tn("{n} account not visited in {days} days.", "{n} accounts not visited in {days} days.", n, { days: d }),
  never: t("Never visited"),
  lastVisit: (at) => t("Last visit {date}", { date: at }),
  showAll: (n) => t("Show all {n}", { n }),
  mapLabel: t("Map of the accounts not visited"),
  devices: t("Phones and freshness"),
  noDevices: t("No phone of the team has synced yet."),
  noPhone: t("No phone has synced since reports began"),
  lastSync: (at) => t("Last sync {when}", { when: at }),
  neverSynced: t("Never synced"),
  pending: (n, at) => (at ? tn("{n} unsent write, oldest from {when}", "{n} unsent writes, oldest from {when}", n, { when: at })
    : tn("{n} unsent write", "{n} unsent writes", n)),
  allSent: t("Nothing unsent"),
  stale: t("Not synced for over a day"),
  feed: t("Latest visits and notes"),
  feedEmpty: t("No visits or notes on this phone yet."),
  visited: (name) => t("visited {name}", { name }),
  noted: (name) => t("wrote a note on {name}", { name }),
  anAccount: t("an account"),
  checkins: t("Today's check-ins on a map"),
  import: t("Import and export"),
  duplicates: t("Duplicates"),
};

const NOT_VISITED_DAYS = [14, 30, 60, 90];
const STALE_MS = 24 * 60 * 60 * 1000;
const LIST_FIRST = 20;
const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) el.setAttribute(k === "testid" ? "data-testid" : k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
}

export function money(sums) {
  const entries = Object.entries(sums || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return "—";
  return entries.map(([cur, amount]) => {
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency: cur, maximumFractionDigits: 0 })
        .format(amount);
    } catch {
      return `${formatNumber(Math.round(amount))} ${cur}`;
    }
  }).join(" + ");
}

const moneyValue = (sums) => Object.entries(sums || {}).sort().map(([c, a]) => `${c}:${a}`).join(";");
const dayMonth = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });
const shortDate = (iso) => dayMonth.format(new Date(`${iso}T00:00:00`));
const rangeText = (from, to) => (from === to ? formatDate(from) : `${formatDate(from)} – ${formatDate(to)}`);

function figure(name, shown, value) {
  return h("div", { class: "figure", testid: "team-rep-figure", dataset: { figure: name, value: String(value) } },
    h("dt", {}, T.figures[name]), h("dd", {}, shown));
}

function repCard(rep, names) {
  const share = rep.visits ? `${rep.verified_visits} (${Math.round((100 * rep.verified_visits) / rep.visits)}%)` : "0";
  return h("li", { class: "card rep-card", testid: "team-rep", dataset: { id: rep.user_id } },
    h("h3", { testid: "team-rep-name" }, names.get(rep.user_id) || rep.username),
    rep.pending ? h("p", { class: "notice" }, T.unsent(rep.pending)) : null,
    h("dl", { class: "figures" },
      figure("visits", String(rep.visits), rep.visits),
      figure("verified_visits", share, rep.verified_visits),
      ["accounts_visited", "new_accounts", "notes", "tasks_done", "deals_won"]
        .map((k) => figure(k, String(rep[k]), rep[k])),
      figure("won_amount", money(rep.won_amount), moneyValue(rep.won_amount)),
      figure("open_pipeline", money(rep.open_pipeline), moneyValue(rep.open_pipeline))));
}

function chart(days, from, to) {
  const W = 320;
  const H = 150;
  const left = 26;
  const bottom = 18;
  const top = 8;
  const max = Math.max(1, ...days.map((d) => d.visits));
  const step = (W - left - 4) / Math.max(1, days.length);
  const y = (n) => top + (H - top - bottom) * (1 - n / max);
  const total = days.reduce((s, d) => s + d.visits, 0);
  const verified = days.reduce((s, d) => s + d.verified_visits, 0);
  const labelEvery = Math.max(1, Math.ceil(days.length / 6));
  const bars = days.map((d, i) => {
    const x = left + i * step + step * 0.1;
    const w = Math.max(1, step * 0.8);
    return svg("g", { testid: "team-chart-day", "data-date": d.date, "data-visits": d.visits,
      "data-verified": d.verified_visits },
    svg("title", {}, T.dayTitle(formatDate(d.date), d.visits, d.verified_visits)),
    svg("rect", { class: "bar-other", x, width: w, y: y(d.visits), height: y(0) - y(d.visits) }),
    svg("rect", { class: "bar-verified", x, width: w, y: y(d.verified_visits), height: y(0) - y(d.verified_visits) }),
    i % labelEvery === 0
      ? svg("text", { class: "axis", x: x + w / 2, y: H - 4, "text-anchor": "middle" }, shortDate(d.date)) : null);
  });
  const label = T.chartLabel(total, verified, rangeText(from, to));
  return [
    svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, testid: "team-chart" },
      svg("line", { class: "axis-line", x1: left, x2: W, y1: y(0), y2: y(0) }),
      svg("text", { class: "axis", x: left - 4, y: y(max) + 4, "text-anchor": "end" }, String(max)),
      svg("text", { class: "axis", x: left - 4, y: y(0), "text-anchor": "end" }, "0"),
      bars),
    h("p", { class: "chart-legend", "aria-hidden": "true" },
      h("span", {}, h("span", { class: "key key-verified" }), T.verified), " ",
      h("span", {}, h("span", { class: "key key-other" }), T.other)),
    h("details", {}, h("summary", {}, T.chartTable),
      h("table", { class: "numbers", testid: "team-chart-table" },
        h("caption", { class: "visually-hidden" }, label),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, T.day), h("th", { scope: "col" }, T.byVisits),
          h("th", { scope: "col" }, T.verified))),
        h("tbody", {}, days.map((d) => h("tr", {}, h("th", { scope: "row" }, formatDate(d.date)),
          h("td", {}, String(d.visits)), h("td", {}, String(d.verified_visits))))))),
  ];
}

function leaderboard(reps, names) {
  const currencies = [...new Set(reps.flatMap((r) => Object.keys(r.won_amount || {})))].sort();
  const by = field({ name: "rank_by", label: T.rankBy, type: "select", testid: "team-rank-by",
    options: [["visits", T.byVisits], ...currencies.map((c) => [`won:${c}`, T.byWon(c)])] });
  const list = h("ol", { class: "list leaders", testid: "team-leaders" });
  const select = by.querySelector("select");
  function draw() {
    const key = select.value;
    const value = (r) => (key === "visits" ? r.visits : (r.won_amount || {})[key.slice(4)] || 0);
    const shown = (r) => (key === "visits" ? String(r.visits) : money({ [key.slice(4)]: value(r) }));
    const sorted = [...reps].sort((a, b) => value(b) - value(a) || a.username.localeCompare(b.username));
    let rank = 0;
    list.replaceChildren(...sorted.map((r, i) => {
      if (i === 0 || value(r) !== value(sorted[i - 1])) rank = i + 1;
      return h("li", { class: "row", testid: "team-leader", dataset: { id: r.user_id, rank: String(rank) } },
        h("span", { class: "rank" }, String(rank)),
        h("span", { class: "row-main row-title" }, names.get(r.user_id) || r.username),
        h("span", { class: "nowrap" }, shown(r)));
    }));
  }
  select.addEventListener("change", draw);
  draw();
  return section(T.leaders, "team-leaderboard", by, list);
}

function pipeline(stages) {
  const forecast = {};
  for (const s of stages) for (const [c, a] of Object.entries(s.weighted || {})) forecast[c] = (forecast[c] || 0) + a;
  return section(T.pipeline, "team-pipeline",
    h("ul", { class: "list" }, stages.map((s) =>
      h("li", { class: "row", testid: "team-stage", dataset: { stage: s.stage, deals: String(s.deals),
        amount: moneyValue(s.amount), weighted: moneyValue(s.weighted) } },
      h("span", { class: "row-main" }, h("span", { class: "row-title" }, LABELS.stage[s.stage] || s.stage),
        h("span", { class: "row-sub" }, T.stageLine(s.deals))),
      h("span", { class: "amounts" }, h("span", {}, money(s.amount)),
        s.deals ? h("span", { class: "row-sub" }, `${money(s.weighted)} ${T.weighted}`) : null)))),
    h("p", { class: "forecast", testid: "team-forecast", dataset: { value: moneyValue(forecast) } },
      `${T.forecast}: `, h("strong", {}, Object.keys(forecast).length ? money(forecast) : T.nothing)));
}

function deviceRow(d, names, now) {
  const stale = !d.last_sync_at || now - new Date(d.last_sync_at).getTime() > STALE_MS;
  return h("li", { class: `row device${stale ? " stale" : ""}`, testid: "team-device",
    dataset: { id: d.client_id, user: d.user_id, pending: String(d.pending ?? "") } },
  h("div", { class: "row-main" },
    h("span", { class: "row-title" }, names.get(d.user_id) || d.username),
    h("span", { class: "row-sub" }, [d.platform, d.app_version ? t("app {version}", { version: d.app_version }) : null].filter(Boolean).join(" · ")),
    h("span", { class: "row-sub" }, d.last_sync_at ? T.lastSync(formatDateTime(d.last_sync_at)) : T.neverSynced),
    stale ? h("span", { class: "row-sub overdue" }, T.stale) : null),
  h("span", { class: `pill ${d.pending ? "pill-pending" : "pill-verified"}`, testid: "team-device-pending" },
    d.pending ? T.pending(d.pending, d.oldest_pending_at ? formatDateTime(d.oldest_pending_at) : null) : T.allSent));
}

function notVisited(report, names, days, onDays, maps) {
  const accounts = report.not_visited || [];
  const daysField = field({ name: "days", label: T.notVisitedDays, type: "select", testid: "team-not-visited-days",
    value: String(days), options: NOT_VISITED_DAYS.map((n) => [String(n), T.daysOption(n)]) });
  daysField.querySelector("select").addEventListener("change", (e) => onDays(Number(e.target.value)));
  const row = (a) => h("li", { class: "row", testid: "team-stale-row", dataset: { id: a.account_id } },
    h("a", { class: "row-main", href: `#/account/${a.account_id}` },
      h("span", { class: "row-title" }, a.name),
      h("span", { class: "row-sub" }, [a.last_visit_at ? T.lastVisit(formatDate(a.last_visit_at)) : T.never,
        a.owner_id ? names.get(a.owner_id) : null].filter(Boolean).join(" · "))));
  const list = h("ul", { class: "list", testid: "team-stale-list" }, accounts.slice(0, LIST_FIRST).map(row));
  const more = accounts.length > LIST_FIRST
    ? h("button", { type: "button", testid: "team-not-visited-more", onclick: (e) => {
      list.replaceChildren(...accounts.map(row));
      e.target.remove();
    } }, T.showAll(accounts.length))
    : null;
  const box = h("div", { class: "nearby-map", testid: "team-not-visited-map", role: "region", "aria-label": T.mapLabel });
  const note = h("p", { class: "hint", hidden: true });
  const points = accounts.filter(hasPosition).map((a) => ({ lat: a.lat, lng: a.lng,
    className: `nearby-marker nearby-marker-${a.status || "prospect"}`,
    popup: () => link(a.name, `#/account/${a.account_id}`, null, "row-title") }));
  drawPoints(box, note, points, maps.stale, { cluster: "due" }).then((m) => { maps.stale = m; });
  return section(T.notVisited, "team-not-visited", daysField,
    h("p", { class: "count", testid: "team-not-visited-count", dataset: { count: String(accounts.length) } },
      T.notVisitedCount(accounts.length, report.not_visited_days || days)),
    points.length ? [box, note] : null, list, more);
}

function feedRow(item, names, accounts) {
  const account = accounts.get(item.account_id) || T.anAccount;
  return h("li", { class: "row", testid: "team-feed-row", dataset: { id: item.id, kind: item.kind } },
    h("a", { class: "row-main", href: item.kind === "visit" ? `#/visit/${item.id}` : `#/account/${item.account_id}` },
      h("span", {}, h("strong", { testid: "team-feed-author" }, authorName(names, item.author_id)), " ",
        item.kind === "visit" ? T.visited(account) : T.noted(account)),
      h("span", { class: "row-sub" }, [formatDateTime(item.at),
        item.outcome ? LABELS.outcome[item.outcome] || item.outcome : null].filter(Boolean).join(" · ")),
      item.text ? h("span", { class: "row-sub clamp" }, item.text) : null));
}

function readQuery(query) {
  const preset = T.presets[query.get("range")] ? query.get("range") : "this_week";
  const days = NOT_VISITED_DAYS.includes(Number(query.get("days"))) ? Number(query.get("days")) : 30;
  const range = preset === "custom" ? { from: query.get("from") || "", to: query.get("to") || "" } : presetRange(preset);
  return { preset, days, ...range };
}

export async function teamScreen(_params, query) {
  if (!isManager()) {
    return { title: T.title, el: h("div", { class: "screen" }, h("h1", {}, T.title), empty(T.notManager, "team-not-manager")) };
  }
  refreshUsers().catch(() => {});
  const state = readQuery(query);
  const maps = { stale: null };
  const rangeField = field({ name: "range", label: T.range, type: "select", testid: "team-range",
    value: state.preset, options: Object.entries(T.presets) });
  const fromField = field({ name: "from", label: T.from, type: "date", testid: "team-from", value: state.from });
  const toField = field({ name: "to", label: T.to, type: "date", testid: "team-to", value: state.to });
  const rangeError = h("p", { class: "error", role: "alert", testid: "team-range-error", hidden: true });
  const custom = h("div", { class: "custom-range", hidden: state.preset !== "custom" }, fromField, toField,
    h("button", { type: "submit", testid: "team-apply" }, T.apply));
  const rangeLabel = h("p", { class: "lead", testid: "team-range-label" });
  const source = h("p", { class: "hint", testid: "team-source", dataset: { source: "loading" }, "aria-live": "polite" }, T.loading);
  const complete = h("p", { class: "notice", testid: "team-complete", hidden: true });
  const figures = h("div", { class: "team-grid", testid: "team-figures" });
  const feed = h("ul", { class: "list", testid: "team-feed-list" });
  const feedSection = section(T.feed, "team-feed", feed);
  const [select, fromInput, toInput] = [rangeField, fromField, toField].map((f) => f.querySelector("select, input"));

  async function drawFeed() {
    const [items, names, accounts] = await Promise.all([teamFeed(), userNames(),
      allRows("accounts")]);
    const accountNames = new Map(accounts.map((a) => [a.id, a.name]));
    feed.replaceChildren(...(items.length ? items.map((i) => feedRow(i, names, accountNames))
      : [h("li", {}, empty(T.feedEmpty, "team-feed-empty"))]));
  }

  const campaigns = h("div", { testid: "team-campaigns-box" });
  campaignsSection(campaigns);
  let drawing = 0;
  let compute = false; // the manager asked for this phone's figures over a kept answer
  async function drawFigures() {
    const mine = ++drawing;
    const problem = rangeProblem(state.from, state.to);
    rangeError.hidden = !problem;
    rangeError.textContent = problem || "";
    if (problem) return;
    rangeLabel.textContent = rangeText(state.from, state.to);
    source.dataset.source = "loading";
    source.textContent = T.loading;
    let got = await loadReport(state);
    // No answer for this period: the phone computes it from the rows it holds (loaded on
    // demand); a kept answer older than this phone's last sync offers to (docs/reports.md).
    const synced = currentStatus().lastSyncAt;
    const older = got.source === "cache" && got.same && synced > got.fetched_at;
    if (got.source === "none" || (got.source === "cache" && (compute || !got.same))) {
      const here = await (await import("../team-local.js")).reportHere(state);
      if (here) got = { ...got, source: "phone", fetched_at: null, ...here, devices: got.devices || here.devices };
    }
    compute = false;
    const names = await userNames();
    if (mine !== drawing) return; // a newer range won
    const why = navigator.onLine ? (got.error ? T.noAnswer(got.error) : "") : T.offline;
    source.dataset.source = got.source;
    source.className = got.source === "server" ? "hint" : "notice";
    if (got.source === "server") source.textContent = T.computed(formatDateTime(got.report.generated_at), got.report.timezone);
    else if (got.source === "refused") source.textContent = got.error;
    else if (got.source === "none") source.textContent = `${why} ${T.none}`;
    else if (got.source === "phone") {
      const args = [formatTime(Date.parse(got.report.generated_at)), formatDateTime(new Date(got.synced_at).toISOString()),
        got.report.timezone];
      source.replaceChildren(navigator.onLine ? `${why} ${T.phone(...args)} ` : `${T.phoneOffline(...args)} `,
      h("span", { testid: "team-unsent", dataset: { count: String(got.unsent) } }, T.notCounted(got.unsent)));
    } else {
      const r = got.report;
      const at = formatDateTime(r.generated_at);
      source.textContent = `${why} ${got.same ? T.cached(at) : T.cachedOther(at, rangeText(r.from, r.to))}.`;
      if (older) {
        source.append(" ", h("button", { type: "button", class: "small", testid: "team-compute",
          onclick: () => { compute = true; drawFigures(); } }, T.newer));
      }
    }
    source.dataset.fetchedAt = String(got.fetched_at || "");
    if (!got.report) {
      figures.replaceChildren(feedSection);
      complete.hidden = true;
      return;
    }
    const r = got.report;
    const reps = r.reps.filter((x) => x.active !== false || x.visits);
    complete.hidden = got.source === "phone" && !got.devices;
    complete.textContent = r.complete_through ? T.complete(formatDateTime(r.complete_through)) : T.completeNone;
    complete.dataset.completeThrough = r.complete_through || "";
    const now = Date.now();
    const devices = got.devices || [];
    const phoneless = reps.filter((x) => x.role === "rep" && !devices.some((d) => d.user_id === x.user_id));
    figures.replaceChildren(
      section(T.reps, "team-reps", reps.length
        ? h("ul", { class: "list rep-cards" }, reps.map((x) => repCard(x, names))) : empty(T.noReps, "team-reps-empty")),
      section(T.chart, "team-days", chart(r.days, r.from, r.to)),
      campaigns,
      leaderboard(reps, names),
      pipeline(r.pipeline),
      notVisited(r, names, state.days, (d) => { state.days = d; remember(); drawFigures(); }, maps),
      section(T.devices, "team-devices", devices.length || phoneless.length
        ? h("ul", { class: "list" }, devices.map((d) => deviceRow(d, names, now)), phoneless.map((x) =>
          h("li", { class: "row device stale", testid: "team-device-none", dataset: { user: x.user_id } },
            h("div", { class: "row-main" }, h("span", { class: "row-title" }, names.get(x.user_id) || x.username),
              h("span", { class: "row-sub" }, T.noPhone)))))
        : empty(T.noDevices, "team-devices-empty")),
      feedSection,
    );
  }

  function remember() {
    const q = new URLSearchParams();
    if (state.preset !== "this_week") q.set("range", state.preset);
    if (state.preset === "custom") {
      q.set("from", state.from);
      q.set("to", state.to);
    }
    if (state.days !== 30) q.set("days", String(state.days));
    replaceQuery("/team", q);
  }

  select.addEventListener("change", () => {
    state.preset = select.value;
    custom.hidden = state.preset !== "custom";
    if (state.preset === "custom") {
      fromInput.value = fromInput.value || state.from;
      toInput.value = toInput.value || state.to;
      return;
    }
    Object.assign(state, presetRange(state.preset));
    remember();
    drawFigures();
  });
  const form = h("form", { class: "range-form", testid: "team-range-form", onsubmit: (e) => {
    e.preventDefault();
    Object.assign(state, { from: fromInput.value, to: toInput.value });
    remember();
    drawFigures();
  } }, rangeField, custom, rangeError);
  const online = () => drawFigures();
  window.addEventListener("online", online);
  await drawFeed();
  figures.append(feedSection);
  drawFigures();
  const csv = h("button", { type: "button", class: "small", testid: "team-csv", onclick: () =>
    downloadCsv(state).catch((err) => toast(err.message)) }, T.csv);

  const el = h("div", { class: "screen team" },
    h("div", { class: "title-row" }, h("h1", {}, T.title), csv,
      link(T.checkins, "#/team/checkins", "team-checkins-link", "button-link"),
      link(T.import, "#/import", "team-import-link", "button-link"),
      link(T.duplicates, "#/duplicates", "team-duplicates-link", "button-link")),
    form, rangeLabel, source, complete, figures);
  return {
    title: T.title, el, onData: drawFeed,
    leave: () => {
      window.removeEventListener("online", online);
      removeMap(maps.stale);
    },
  };
}
