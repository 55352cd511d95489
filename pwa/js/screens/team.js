// Team: the manager's home. Online it reads the team report and the devices list
// (docs/reports.md); offline it shows the last ones it fetched, marked with when they were
// computed. The feed comes from the rows this phone holds; the campaigns' progress from the
// server (the last answer, offline). Managers and admins only.

import { authorName } from "../components.js";
import { drawPoints, hasPosition, removeMap } from "../map.js";
import { allRows } from "../records.js";
import { replaceQuery } from "../router.js";
import { refreshUsers, userNames } from "../session.js";
import { downloadCsv, isManager, loadReport, presetRange, rangeProblem, teamFeed } from "../team.js";
import { LABELS, empty, field, formatDate, formatDateTime, h, link, section, toast } from "../ui.js";
import { campaignsSection } from "./campaign.js";

// Every sentence of the screen, in one place (a message catalogue replaces it later).
const T = {
  title: "Team",
  notManager: "The Team screen is for managers.",
  range: "Period",
  presets: { this_week: "This week", last_week: "Last week", this_month: "This month", custom: "Custom dates" },
  from: "From",
  to: "To",
  apply: "Show",
  loading: "Fetching the figures…",
  computed: (at, tz) => `Figures computed at ${at} (days in ${tz}).`,
  offline: "Offline: the figures need a connection.",
  noAnswer: (why) => `The server did not answer (${why}).`,
  cached: (at) => `Showing the report computed at ${at}`,
  cachedOther: (at, range) => `Showing the last report kept, computed at ${at}, for ${range}`,
  none: "This phone has not fetched a report yet.",
  csv: "Download CSV",
  complete: (at) => `Complete through ${at}: work on phones after that may not be in the figures yet.`,
  completeNone: "No phone of the team has synced since reports began.",
  reps: "Activity per rep",
  noReps: "Nobody in the team yet.",
  figures: {
    visits: "Visits", verified_visits: "Verified", accounts_visited: "Accounts visited",
    new_accounts: "New accounts", notes: "Notes", tasks_done: "Tasks done", deals_won: "Deals won",
    won_amount: "Won", open_pipeline: "Open pipeline",
  },
  unsent: (n) => `${n} unsent on their phone`,
  chart: "Visits per day",
  chartLabel: (total, verified, range) => `Visits per day, ${range}: ${total} visits, ${verified} verified.`,
  chartTable: "Show the numbers",
  day: "Day",
  verified: "Verified",
  other: "Not verified",
  dayTitle: (date, n, v) => `${date}: ${n} visit${n === 1 ? "" : "s"}, ${v} verified`,
  leaders: "Leaderboard",
  rankBy: "Rank by",
  byVisits: "Visits",
  byWon: (cur) => `Won amount (${cur})`,
  pipeline: "Pipeline",
  stageLine: (n) => `${n} deal${n === 1 ? "" : "s"}`,
  weighted: "weighted",
  forecast: "Weighted forecast",
  nothing: "Nothing",
  notVisited: "Not visited",
  notVisitedDays: "Not visited in",
  daysOption: (n) => `${n} days`,
  notVisitedCount: (n, d) => `${n} account${n === 1 ? "" : "s"} not visited in ${d} days.`,
  never: "Never visited",
  lastVisit: (at) => `Last visit ${at}`,
  showAll: (n) => `Show all ${n}`,
  mapLabel: "Map of the accounts not visited",
  devices: "Phones and freshness",
  noDevices: "No phone of the team has synced yet.",
  noPhone: "No phone has synced since reports began",
  lastSync: (at) => `Last sync ${at}`,
  neverSynced: "Never synced",
  pending: (n, at) => `${n} unsent write${n === 1 ? "" : "s"}${at ? `, oldest from ${at}` : ""}`,
  allSent: "Nothing unsent",
  stale: "Not synced for over a day",
  feed: "Latest visits and notes",
  feedEmpty: "No visits or notes on this phone yet.",
  visited: (name) => `visited ${name}`,
  noted: (name) => `wrote a note on ${name}`,
  anAccount: "an account",
  checkins: "Today's check-ins on a map",
  import: "Import and export",
  duplicates: "Duplicates",
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
      return new Intl.NumberFormat(undefined, { style: "currency", currency: cur, maximumFractionDigits: 0 })
        .format(amount);
    } catch {
      return `${Math.round(amount)} ${cur}`;
    }
  }).join(" + ");
}

const moneyValue = (sums) => Object.entries(sums || {}).sort().map(([c, a]) => `${c}:${a}`).join(";");
const shortDate = (iso) => new Date(`${iso}T00:00:00`).toLocaleDateString(undefined, { day: "numeric", month: "short" });
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
    h("span", { class: "row-sub" }, [d.platform, d.app_version ? `app ${d.app_version}` : null].filter(Boolean).join(" · ")),
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
  async function drawFigures() {
    const mine = ++drawing;
    const problem = rangeProblem(state.from, state.to);
    rangeError.hidden = !problem;
    rangeError.textContent = problem || "";
    if (problem) return;
    rangeLabel.textContent = rangeText(state.from, state.to);
    source.dataset.source = "loading";
    source.textContent = T.loading;
    const got = await loadReport(state);
    const names = await userNames();
    if (mine !== drawing) return; // a newer range won
    const why = navigator.onLine ? (got.error ? T.noAnswer(got.error) : "") : T.offline;
    source.dataset.source = got.source;
    source.className = got.source === "server" ? "hint" : "notice";
    if (got.source === "server") source.textContent = T.computed(formatDateTime(got.report.generated_at), got.report.timezone);
    else if (got.source === "refused") source.textContent = got.error;
    else if (got.source === "none") source.textContent = `${why} ${T.none}`;
    else {
      const r = got.report;
      const at = formatDateTime(r.generated_at);
      source.textContent = `${why} ${got.same ? T.cached(at) : T.cachedOther(at, rangeText(r.from, r.to))}.`;
    }
    source.dataset.fetchedAt = String(got.fetched_at || "");
    if (!got.report) {
      figures.replaceChildren(feedSection);
      complete.hidden = true;
      return;
    }
    const r = got.report;
    const reps = r.reps.filter((x) => x.active !== false || x.visits);
    complete.hidden = false;
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
