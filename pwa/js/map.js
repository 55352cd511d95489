// Maps and distances. Leaflet is served by the server from /vendor/leaflet/ and loaded the
// first time a map is drawn: it is not part of the app shell (the service worker keeps a
// copy once fetched, so the map opens offline after its first use). Without a tile server,
// or offline, the map still shows its markers, on a plain background.

import { apiFetch, NetworkError } from "./api.js";
import { read, write } from "./db.js";
import { session } from "./session.js";
import { h } from "./ui.js";

const LEAFLET_JS = "/vendor/leaflet/leaflet.js";
const LEAFLET_CSS = "/vendor/leaflet/leaflet.css";
const CONFIG_KEY = "map_config";

let loading = null;

// Leaflet's global `L`, once its script and stylesheet are in the page.
export function loadLeaflet() {
  if (globalThis.L) return Promise.resolve(globalThis.L);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (!document.querySelector(`link[href="${LEAFLET_CSS}"]`)) {
        document.head.append(h("link", { rel: "stylesheet", href: LEAFLET_CSS }));
      }
      const script = h("script", { src: LEAFLET_JS });
      script.addEventListener("load", () => resolve(globalThis.L));
      script.addEventListener("error", () => {
        loading = null;
        script.remove();
        reject(new Error("The map could not be loaded."));
      });
      document.head.append(script);
    });
  }
  return loading;
}

// The server's map settings ({tile_url, tile_attribution}), kept on the phone for offline use.
export async function mapConfig() {
  const token = session().token;
  if (token && navigator.onLine) {
    try {
      const result = await apiFetch("/api/config", { token, timeoutMs: 5000 });
      if (result.status === 200 && result.data) {
        const config = {
          tile_url: String(result.data.tile_url || ""),
          tile_attribution: String(result.data.tile_attribution || ""),
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

export function formatDistance(metres, { approximate = false } = {}) {
  let text;
  if (metres < 1000) text = `${Math.round(metres)} m`;
  else if (metres < 10_000) text = `${(metres / 1000).toFixed(1)} km`;
  else text = `${Math.round(metres / 1000)} km`;
  return approximate ? `≈ ${text}` : text;
}

export function hasPosition(account) {
  return typeof account.lat === "number" && typeof account.lng === "number";
}

// A `geo:` link: the phone's maps app offers directions to it.
export function directionsHref(account) {
  const point = `${account.lat},${account.lng}`;
  return `geo:${point}?q=${point}(${encodeURIComponent(account.name || "Account")})`;
}

const PRECISION = {
  street: "from its address",
  postcode: "at its postcode, from its address",
  city: "at its city centre, from its address",
  unknown: "from its address",
};

// How the account screen describes a position, and where it came from (accounts.geo_precision
// is set by the server's geocoder; a position set by a person has none).
export function positionText(account) {
  if (hasPosition(account)) {
    const how = PRECISION[account.geo_precision];
    const point = `${account.lat}, ${account.lng}`;
    return how ? `${point} (placed ${how}; set it on site to be exact)` : point;
  }
  if (account.geo_precision === "none") return "Its address could not be placed on the map";
  return null;
}

// Marker styles are CSS classes (app.css), so they follow the light and dark schemes.
export const MARKED_STATUSES = ["prospect", "customer", "inactive"];

// A Leaflet map of the rep and the accounts around them.
export class NearbyMap {
  constructor(L, container, { tileUrl = "", attribution = "" } = {}) {
    this.L = L;
    this.map = L.map(container, { attributionControl: !!tileUrl, zoomSnap: 0.5 });
    if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19, attribution }).addTo(this.map);
    this.markers = L.layerGroup().addTo(this.map);
    this.fitted = false;
  }

  // position: {lat, lng, accuracy}; results: [{account, distance_m}]; popup(account) -> Node
  show(position, radiusM, results, popup, { refit = false } = {}) {
    const L = this.L;
    this.markers.clearLayers();
    const here = [position.lat, position.lng];
    L.circle(here, { radius: radiusM, className: "nearby-radius", interactive: false }).addTo(this.markers);
    const points = [here];
    for (const { account } of results) {
      // Drawn on the rep's side of the antimeridian, not round the other side of the world.
      const lng = account.lng + 360 * Math.round((position.lng - account.lng) / 360);
      const status = MARKED_STATUSES.includes(account.status) ? account.status : "prospect";
      L.circleMarker([account.lat, lng], { radius: 8, className: `nearby-marker nearby-marker-${status}` })
        .bindPopup(popup(account))
        .addTo(this.markers);
      points.push([account.lat, lng]);
    }
    L.circleMarker(here, { radius: 9, className: "nearby-you", interactive: false }).addTo(this.markers);
    if (!this.fitted || refit) {
      if (points.length > 1) this.map.fitBounds(L.latLngBounds(points).pad(0.15), { maxZoom: 16 });
      else this.map.setView(here, 14);
      this.fitted = true;
    }
  }

  resize() {
    this.map.invalidateSize();
  }

  remove() {
    this.map.remove();
  }
}

// Screens redraw quickly (a range changed twice): two draws may both be handed the same
// previous map, and Leaflet throws when a map is removed twice.
const removedMaps = new WeakSet();
export function removeMap(map) {
  if (!map || removedMaps.has(map)) return;
  removedMaps.add(map);
  map.remove();
}

// A map of points only (the Team screens): [{lat, lng, className, popup}], fitted to them.
// Drawn into `box`; `note` says when there is no background or no map at all. Answers the
// map (keep it to remove it when the screen goes), or null.
export async function drawPoints(box, note, points, previous = null) {
  removeMap(previous);
  if (!box.isConnected) await new Promise((resolve) => requestAnimationFrame(resolve));
  if (!box.isConnected) return null;
  let L;
  let config;
  try {
    [L, config] = await Promise.all([loadLeaflet(), mapConfig()]);
  } catch (err) {
    box.hidden = true;
    note.textContent = `${(err && err.message) || "The map could not be loaded."} The list works without it.`;
    note.hidden = false;
    return null;
  }
  box.hidden = false;
  const map = L.map(box, { attributionControl: !!config.tile_url, zoomSnap: 0.5 });
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution }).addTo(map);
  }
  note.textContent = config.tile_url ? "" : "No map background is set up on this server: the map shows positions only.";
  note.hidden = !!config.tile_url;
  const where = [];
  for (const p of points) {
    const marker = L.circleMarker([p.lat, p.lng], { radius: 8, className: p.className });
    if (p.popup) marker.bindPopup(p.popup);
    marker.addTo(map);
    where.push([p.lat, p.lng]);
  }
  if (where.length > 1) map.fitBounds(L.latLngBounds(where).pad(0.15), { maxZoom: 15 });
  else if (where.length) map.setView(where[0], 14);
  else map.setView([46.5, 2.5], 4);
  return map;
}
