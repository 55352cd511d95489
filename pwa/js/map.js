// Maps (docs/map.md) and distances. Leaflet and its clusters load when a map is first drawn.

import { formatNumber, mark, t } from "./i18n.js";
import { apiFetch, NetworkError } from "./api.js";
import { AccountLayer, clusterGroup, clusterIcon } from "./map-layers.js";
import { addBasemap } from "./basemap.js";
import { read, write } from "./db.js";
import { session } from "./session.js";
import { h } from "./ui.js";

const VENDOR = [
  ["/vendor/leaflet/leaflet.css", "/vendor/leaflet/leaflet.js"],
  ["/vendor/leaflet-markercluster/MarkerCluster.css", "/vendor/leaflet-markercluster/leaflet.markercluster.js"],
];
const CONFIG_KEY = "map_config";

let loading = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = h("script", { src });
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => {
      script.remove();
      reject(new Error(t("The map could not be loaded.")));
    });
    document.head.append(script);
  });
}

// Leaflet's global `L` with its clusters (the plugin after Leaflet).
export function loadLeaflet() {
  if (globalThis.L && globalThis.L.MarkerClusterGroup) return Promise.resolve(globalThis.L);
  if (!loading) {
    loading = (async () => {
      for (const [css, js] of VENDOR) {
        document.head.append(h("link", { rel: "stylesheet", href: css }));
        await loadScript(js);
      }
      return globalThis.L;
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}

// A map in `box` on the basemap, with a view at once (clusters need one).
export function createMap(L, box, config, options = {}) {
  const map = L.map(box, { zoomSnap: 0.5, minZoom: 2, maxZoom: 19, zoomControl: false, ...options })
    .setView([46.5, 2.5], 5);
  // Leaflet's own buttons, in the app's language.
  if (options.zoomControl !== false) {
    L.control.zoom({ zoomInTitle: t("Zoom in"), zoomOutTitle: t("Zoom out") }).addTo(map);
  }
  addBasemap(L, map, config, box);
  return map;
}

// The server's map settings ({tile_url, tile_attribution, tile_pack}), kept on the phone
// for offline use.
export async function mapConfig() {
  const token = session().token;
  if (token && navigator.onLine) {
    try {
      const result = await apiFetch("/api/config", { token, timeoutMs: 5000 });
      if (result.status === 200 && result.data) {
        const config = {
          tile_url: String(result.data.tile_url || ""),
          tile_attribution: String(result.data.tile_attribution || ""),
          tile_pack: result.data.tile_pack || null,
        };
        await write(["meta"], (s) => s.meta.put(config, CONFIG_KEY));
        return config;
      }
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
    }
  }
  return (await read(["meta"], (s) => s.meta.get(CONFIG_KEY))) || { tile_url: "", tile_attribution: "" };
}

export { approximateDistanceM } from "./geodesic.js";

const ONE_DECIMAL = { minimumFractionDigits: 1, maximumFractionDigits: 1 };

export function formatDistance(metres, { approximate = false } = {}) {
  let text;
  if (metres < 1000) text = `${formatNumber(Math.round(metres))} m`;
  else if (metres < 10_000) text = `${formatNumber(metres / 1000, ONE_DECIMAL)} km`;
  else text = `${formatNumber(Math.round(metres / 1000))} km`;
  return approximate ? `≈ ${text}` : text;
}

export function hasPosition(account) {
  return typeof account.lat === "number" && typeof account.lng === "number";
}

// Directions in the phone's maps app: Apple Maps on an iPhone or iPad (Safari opens no
// `geo:` link), elsewhere a `geo:` link, which Android hands to the maps app chosen.
export function directionsHref(account, agent = navigator.userAgent) {
  const point = `${account.lat},${account.lng}`;
  const name = encodeURIComponent(account.name || t("Account"));
  if (/iPhone|iPad|iPod|Macintosh.*Mobile/.test(agent)) return `https://maps.apple.com/?daddr=${point}&q=${name}`;
  return `geo:${point}?q=${point}(${name})`;
}

const PRECISION = {
  street: mark("{point} (placed from its address; set it on site to be exact)"),
  postcode: mark("{point} (placed at its postcode, from its address; set it on site to be exact)"),
  city: mark("{point} (placed at its city centre, from its address; set it on site to be exact)"),
  unknown: mark("{point} (placed from its address; set it on site to be exact)"),
};

// How the account screen describes a position, and where it came from (accounts.geo_precision
// is set by the server's geocoder; a position set by a person has none).
export function positionText(account) {
  if (hasPosition(account)) {
    const how = PRECISION[account.geo_precision];
    const point = `${account.lat}, ${account.lng}`;
    return how ? t(how, { point }) : point;
  }
  if (account.geo_precision === "none") return t("Its address could not be placed on the map");
  return null;
}

// The rep's accounts (map-layers.js), position and radius.
export class NearbyMap {
  constructor(L, container, config, popup) {
    this.L = L;
    this.map = createMap(L, container, config);
    this.accounts = new AccountLayer(L, this.map, popup);
    this.here = L.layerGroup().addTo(this.map);
  }

  showAccounts(accounts, mode, lastVisit, near) {
    return this.accounts.set(accounts, mode, lastVisit, near);
  }

  // results: the nearest ([{account}]), which the view fits. A view fitted to the same
  // points and not moved since stays: fitting it again (Nearby opened again) would move
  // nothing yet redraw every cluster and city name.
  showPosition(position, radiusM, results, { refit = false } = {}) {
    const L = this.L;
    this.here.clearLayers();
    const here = [position.lat, position.lng];
    L.circle(here, { radius: radiusM, className: "nearby-radius", interactive: false }).addTo(this.here);
    L.circleMarker(here, { radius: 9, className: "nearby-you", interactive: false }).addTo(this.here);
    if (!refit) return;
    const points = [here, ...results.map(({ account: a }) => [a.lat, a.lng + 360 * Math.round((position.lng - a.lng) / 360)])];
    const key = JSON.stringify(points);
    const view = () => `${this.map.getCenter().toString()} ${this.map.getZoom()} ${this.map.getSize().toString()}`;
    if (this.fitted && this.fitted.key === key && this.fitted.view === view()) return;
    const fitted = { key, view: null };
    this.fitted = fitted;
    this.map.once("moveend", () => { fitted.view = view(); });
    if (points.length > 1) this.map.fitBounds(L.latLngBounds(points).pad(0.15), { maxZoom: 16 });
    else this.map.setView(here, 14);
  }

  remove() {
    this.accounts.set([], "", new Map()).finally(() => removeMap(this.map)); // once clusters are in
  }
}

// Screens redraw quickly (a range changed twice): two draws may both be handed the same
// previous map, and Leaflet throws when a map is removed twice. Leaflet also ends a zoom
// on a timer (250 ms) and tells a resize's end late (200 ms), and both read the map's
// panes, gone once it is removed: a screen left mid-zoom threw. The zoom is ended now, and
// the listeners go with the map.
const removedMaps = new WeakSet();
export function removeMap(map) {
  if (!map || removedMaps.has(map)) return;
  removedMaps.add(map);
  if (map._animatingZoom) map._onZoomTransitionEnd(); // Leaflet's own end of a zoom
  map.remove();
  map.off();
}

// A map in `box`: draw(L, map) adds what it shows and fits the view; `note` (optional) says
// when there is no map. Answers the map (to remove when the screen goes), or null.
export async function drawMap(box, note, previous, draw) {
  removeMap(previous);
  if (!box.isConnected) await new Promise((resolve) => requestAnimationFrame(resolve));
  if (!box.isConnected) return null;
  try {
    const [L, config] = await Promise.all([loadLeaflet(), mapConfig()]);
    if (!box.isConnected) return null;
    const map = createMap(L, box, config);
    draw(L, map);
    return map;
  } catch (err) {
    box.hidden = true;
    if (note) {
      note.textContent = `${(err && err.message) || t("The map could not be loaded.")} ${t("The list works without it.")}`;
      note.hidden = false;
    }
    return null;
  }
}

// A map of points only (the Team screens): [{lat, lng, className, popup}], fitted to them.
// `cluster`: "plain", or "due" (in the not-visited colour): the points clustered as on
// Nearby, so a team's thousands of accounts stay fluid; added at once, not in slices, as
// these maps are removed and drawn again whole (a range changed) and a slice must not come
// after its map is gone.
export function drawPoints(box, note, points, previous = null, { cluster = null } = {}) {
  return drawMap(box, note, previous, (L, map) => {
    const where = points.map((p) => [p.lat, p.lng]);
    if (where.length > 1) map.fitBounds(L.latLngBounds(where).pad(0.15), { maxZoom: 15 });
    else if (where.length) map.setView(where[0], 14);
    const markers = points.map((p) => {
      const marker = L.circleMarker([p.lat, p.lng], { radius: 8, className: p.className });
      if (p.popup) marker.bindPopup(p.popup);
      return marker;
    });
    if (cluster === null) markers.forEach((marker) => marker.addTo(map));
    else {
      clusterGroup(L, (group) => clusterIcon(L, group, cluster === "due"), { chunkedLoading: false })
        .addTo(map).addLayers(markers);
    }
  });
}
