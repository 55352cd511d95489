// Over the basemap (docs/map.md): accounts, clustered (10,000 stay fluid), coloured (CSS
// classes) by status or last visit, with a legend; a day's route.

import { t } from "./i18n.js";
import { getRecord, pendingKeys } from "./records.js";
import { h, LABELS } from "./ui.js";

export const COLOUR_MODES = Object.fromEntries([...[30, 60, 90].map((d) => [d, t("Not visited in {days} days", { days: d })]), ["status", t("By status")]]);
export const DEFAULT_COLOUR = "30";

// Each account's last visit (ms): last_visit_at, or an unsent visit of this phone's.
export async function lastVisits(accounts) {
  const last = new Map();
  for (const a of accounts) if (a.last_visit_at) last.set(a.id, Date.parse(a.last_visit_at));
  for (const key of await pendingKeys()) {
    const visit = key.startsWith("visits/") && (await getRecord("visits", key.slice(7)));
    const at = visit && Date.parse(visit.started_at);
    if (at && !(last.get(visit.account_id) >= at)) last.set(visit.account_id, at);
  }
  return last;
}

export function colourOf(account, mode, lastVisitMs, now = Date.now()) {
  if (mode === "status") return LABELS.status[account.status] ? account.status : "prospect";
  if (!lastVisitMs) return "never";
  return now - lastVisitMs < mode * 86_400_000 ? "recent" : "due";
}

export function legend(mode) {
  const entries = mode === "status" ? Object.entries(LABELS.status)
    : [["recent", t("Visited in the last {days} days", { days: mode })], ["due", t("Not visited in {days} days", { days: mode })],
      ["never", t("Never visited")]];
  return h("div", { class: "nearby-legend", testid: "map-legend", dataset: { mode } },
    entries.map(([key, label]) =>
      h("span", { testid: "map-legend-item", dataset: { key } }, h("span", { class: `map-dot map-${key}` }), label)));
}

const icons = {};
const pin = (L, colour) => (icons[colour] ||= L.divIcon({ className: `map-pin map-${colour}`, iconSize: [18, 18] }));

// A cluster's count, marked "due" when `due` (most of its accounts are).
export function clusterIcon(L, cluster, due = false) {
  const count = cluster.getChildCount();
  const size = count < 100 ? 34 : count < 1000 ? 40 : 48;
  return L.divIcon({ className: `map-cluster${due ? " map-cluster-due" : ""}`, html: h("span", {}, count), iconSize: [size, size] });
}

const isDue = (cluster) =>
  cluster.getAllChildMarkers().filter((m) => /due|never/.test(m.options.colour)).length * 2 >= cluster.getChildCount();

// Leaflet.markercluster as every map here has it: markers added in slices (no frozen frame),
// no animations (their transitions force page layouts), apart from zoom 17.
export function clusterGroup(L, icon, options = {}) {
  return L.markerClusterGroup({
    chunkedLoading: true,
    chunkInterval: 30,
    chunkDelay: 10,
    animate: false,
    maxClusterRadius: 48,
    disableClusteringAtZoom: 17,
    showCoverageOnHover: false,
    spiderfyOnMaxZoom: false,
    iconCreateFunction: icon,
    ...options,
  });
}

export class AccountLayer {
  constructor(L, map, popup) {
    Object.assign(this, { L, map, popup, queue: Promise.resolve(), asked: 0, shown: new Map(), loaded() {} });
    this.clusters = clusterGroup(L, (cluster) => clusterIcon(L, cluster, isDue(cluster)), {
      chunkProgress: (done, total) => done === total && this.loaded(),
    }).addTo(map);
  }

  // Answers how many, once all are in. One at a time (clusters filling in slices must not
  // change), the latest asked.
  set(...args) {
    const asked = ++this.asked;
    this.queue = this.queue.catch(() => {}).then(() => asked === this.asked && this.replace(...args));
    return this.queue.then(() => this.shown.size);
  }

  // Only accounts added, changed or gone change: a sync does not redraw all.
  replace(accounts, mode, lastVisit, near) {
    const L = this.L;
    const old = this.shown;
    const added = [];
    this.shown = new Map();
    for (const account of accounts) {
      if (typeof account.lat !== "number" || typeof account.lng !== "number") continue;
      const colour = colourOf(account, mode, lastVisit.get(account.id));
      // On the rep's side of the antimeridian.
      const lng = near ? account.lng + 360 * Math.round((near.lng - account.lng) / 360) : account.lng;
      const key = `${account.lat} ${lng} ${colour} ${account.name}`;
      let marker = old.get(account.id);
      if (marker && marker.options.key === key) old.delete(account.id);
      else {
        marker = L.marker([account.lat, lng], { icon: pin(L, colour), colour, key, keyboard: false, title: account.name || "" });
        added.push(marker.bindPopup(() => this.popup(account))); // built when opened
      }
      this.shown.set(account.id, marker);
    }
    this.clusters.removeLayers([...old.values()]);
    return new Promise((resolve) => {
      this.loaded = resolve;
      this.clusters.addLayers(added);
      if (!added.length) resolve();
    });
  }
}

// A day's route: the start, a line, the stops ([{lat, lng, name}]) numbered in order.
export function drawRoute(L, map, start, stops) {
  const path = [start, ...stops].map((p) => [p.lat, p.lng]);
  const layer = L.featureGroup([
    L.polyline(path, { className: "route-line", interactive: false }),
    L.circleMarker(path[0], { radius: 8, className: "nearby-you", interactive: false }),
    ...stops.map((stop, i) => L.marker(path[i + 1], {
      icon: L.divIcon({ className: "route-stop", html: h("span", {}, i + 1), iconSize: [26, 26] }),
      title: `${i + 1}. ${stop.name || ""}`,
      keyboard: false,
    })),
  ]).addTo(map);
  map.fitBounds(layer.getBounds().pad(0.15), { maxZoom: 16 });
}
