// Accounts on a map: clustered (Leaflet.markercluster, so 10,000 stay fluid) and coloured
// either by status or by how long ago they were last visited, with the legend that says so
// (docs/map.md). Colours are CSS classes (app.css), so they follow the light and dark schemes.

import { getRecord, pendingKeys } from "./records.js";
import { h, LABELS } from "./ui.js";

const DAY_MS = 86_400_000;
// "status", or a number of days: accounts not visited in that many days stand out.
export const COLOUR_MODES = { 30: "Not visited in 30 days", 60: "Not visited in 60 days", 90: "Not visited in 90 days", status: "By status" };
export const DEFAULT_COLOUR = "30";

// The last visit of each account, in ms: the server's last_visit_at, or a visit made on this
// phone and not sent yet (the server sets last_visit_at when it gets it).
export async function lastVisits(accounts) {
  const last = new Map();
  for (const a of accounts) if (a.last_visit_at) last.set(a.id, Date.parse(a.last_visit_at));
  for (const key of await pendingKeys()) {
    if (!key.startsWith("visits/")) continue;
    const visit = await getRecord("visits", key.slice(7));
    const at = visit && Date.parse(visit.started_at);
    if (at && !(last.get(visit.account_id) >= at)) last.set(visit.account_id, at);
  }
  return last;
}

// The colour class of one account: its status, or recent / due / never (visited).
export function colourOf(account, mode, lastVisitMs, now = Date.now()) {
  if (mode === "status") return LABELS.status[account.status] ? account.status : "prospect";
  if (!lastVisitMs) return "never";
  return now - lastVisitMs < Number(mode) * DAY_MS ? "recent" : "due";
}

export function legendEntries(mode) {
  if (mode === "status") return Object.entries(LABELS.status);
  return [["recent", `Visited in the last ${mode} days`], ["due", `Not visited in ${mode} days`], ["never", "Never visited"]];
}

export function legend(mode) {
  return h("div", { class: "nearby-legend", testid: "map-legend", dataset: { mode } },
    legendEntries(mode).map(([key, label]) =>
      h("span", { testid: "map-legend-item", dataset: { key } }, h("span", { class: `map-dot map-${key}` }), label)));
}

const icons = new Map();
function pin(L, colour) {
  if (!icons.has(colour)) icons.set(colour, L.divIcon({ className: `map-pin map-${colour}`, iconSize: [18, 18] }));
  return icons.get(colour);
}

// A cluster says how many accounts it holds, and is marked when most of them are due a visit.
function clusterIcon(L, cluster) {
  const count = cluster.getChildCount();
  const due = cluster.getAllChildMarkers().filter((m) => m.options.colour === "due" || m.options.colour === "never").length;
  const size = count < 100 ? 34 : count < 1000 ? 40 : 48;
  return L.divIcon({
    className: `map-cluster${due * 2 >= count ? " map-cluster-due" : ""}`,
    html: h("span", {}, String(count)),
    iconSize: [size, size],
  });
}

// The clustered accounts of a map. set(accounts, mode, lastVisit) replaces them all.
export class AccountLayer {
  constructor(L, map, popup) {
    this.L = L;
    this.popup = popup;
    this.clusters = L.markerClusterGroup({
      chunkedLoading: true, // added in slices of a few ms: the page never freezes
      chunkInterval: 30,
      chunkDelay: 10,
      maxClusterRadius: 48,
      disableClusteringAtZoom: 17,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: false,
      iconCreateFunction: (cluster) => clusterIcon(L, cluster),
    }).addTo(map);
  }

  set(accounts, mode, lastVisit, near = null) {
    const L = this.L;
    this.clusters.clearLayers();
    const markers = [];
    for (const account of accounts) {
      if (typeof account.lat !== "number" || typeof account.lng !== "number") continue;
      const colour = colourOf(account, mode, lastVisit.get(account.id));
      // Drawn on the rep's side of the antimeridian, not round the other side of the world.
      const lng = near ? account.lng + 360 * Math.round((near.lng - account.lng) / 360) : account.lng;
      const marker = L.marker([account.lat, lng], { icon: pin(L, colour), colour, keyboard: false, title: account.name || "" });
      marker.bindPopup(() => this.popup(account)); // built when opened, not 10,000 times
      markers.push(marker);
    }
    this.clusters.addLayers(markers);
    return markers.length;
  }
}
