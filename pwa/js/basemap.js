// Under every map (docs/map.md): the world (outlines, city names: a map offline is never
// blank), the street tiles online, a territory pack's tiles (fetched with the token, kept).

import { session } from "./session.js";
import { h } from "./ui.js";

// The smallest city named at each zoom (the list comes biggest first).
const LABEL_POPULATION = [[4, 2e6], [5, 1e6], [6, 3e5], [7, 1e5], [8, 4e4]];
let world = null;

function loadWorld() {
  world ||= fetch("/basemap/world.json").then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.status))));
  world.catch(() => { world = null; });
  return world;
}

export function addBasemap(L, map, config, box) {
  map.createPane("basemap").style.zIndex = 150; // under the tiles (200)
  map.attributionControl.setPrefix(false);
  let removed = false;
  map.on("unload", () => { removed = true; });
  loadWorld().then((data) => {
    if (removed) return;
    drawWorld(L, map, data);
    box.dataset.basemap = "world";
  }, () => {});
  if (config.tile_url) {
    // Through CORS, so the service worker can keep them.
    L.tileLayer(config.tile_url, { maxZoom: 19, crossOrigin: true, attribution: config.tile_attribution }).addTo(map);
  }
  if (config.tile_pack) packLayer(L, config.tile_pack).addTo(map);
}

function drawWorld(L, map, data) {
  const renderer = L.svg({ pane: "basemap" });
  L.geoJSON(data, { renderer, interactive: false, style: () => ({ className: "basemap-land" }) }).addTo(map);
  map.attributionControl.addAttribution("Natural Earth, GeoNames");
  const labels = L.layerGroup([], { pane: "basemap" }).addTo(map);
  const draw = () => labelCities(L, map, labels, data.cities);
  map.on("moveend", draw);
  draw();
}

// The biggest cities in view, none over another.
function labelCities(L, map, labels, cities) {
  labels.clearLayers();
  const least = (LABEL_POPULATION.find(([z]) => map.getZoom() <= z) || [0, 0])[1];
  const b = map.getBounds().pad(0.1);
  const [south, west, north, east] = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()];
  const placed = [];
  for (const [name, lng, lat, population] of cities) {
    if (population < least || placed.length >= 60) break;
    if (lat < south || lat > north || lng < west || lng > east) continue;
    const at = map.latLngToContainerPoint([lat, lng]);
    if (placed.some((p) => Math.abs(p.x - at.x) < 90 && Math.abs(p.y - at.y) < 22)) continue;
    placed.push(at);
    const icon = L.divIcon({ className: "basemap-city", html: h("span", {}, name), iconSize: null });
    L.marker([lat, lng], { icon, pane: "basemap", interactive: false, keyboard: false }).addTo(labels);
  }
}

export const packCacheName = (pack) => `fieldcrm-pack-${pack.version}`;

// The phone's copy of a tile, else the server's (then kept), else null.
export async function packTile(pack, url) {
  const cache = await caches.open(packCacheName(pack));
  const kept = await cache.match(url);
  if (kept) return kept.blob();
  const token = session().token;
  if (!token || !navigator.onLine) return null;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) return null;
  await cache.put(url, response.clone());
  return response.blob();
}

function packLayer(L, pack) {
  const Pack = L.GridLayer.extend({
    createTile(coords, done) {
      const img = h("img", { alt: "" });
      const fail = () => done(null, img); // empty: the basemap shows
      packTile(pack, L.Util.template(pack.url, coords)).then((blob) => {
        if (!blob) return fail();
        img.onload = () => { URL.revokeObjectURL(img.src); done(null, img); };
        img.src = URL.createObjectURL(blob);
      }, fail);
      return img;
    },
  });
  const [west, south, east, north] = pack.bounds || [];
  return new Pack({
    attribution: pack.attribution,
    minZoom: pack.min_zoom,
    maxNativeZoom: pack.max_zoom,
    bounds: north === undefined ? undefined : [[south, west], [north, east]],
    zIndex: 2,
  });
}
