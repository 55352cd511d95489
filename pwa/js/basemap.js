// What every map is drawn on (docs/map.md), bottom to top:
// - the world: country outlines and city names from /basemap/world.json, which the service
//   worker keeps from the app's first start, so a map offline is never blank;
// - the streets: the server's tile service when online (tiles seen are kept offline, within
//   a size limit, by the service worker);
// - a territory pack, if the server has one: its tiles come with the bearer token and are
//   kept on the phone, all of them once the rep asks for it (Me → "Keep the territory map").

import { session } from "./session.js";
import { h } from "./ui.js";

const WORLD_URL = "/basemap/world.json";
const WORLD_CREDIT = "Natural Earth, GeoNames";
const MAX_LABELS = 60;
// The smallest city named at each zoom (the list comes biggest first).
const LABEL_POPULATION = [[4, 2_000_000], [5, 1_000_000], [6, 300_000], [7, 100_000], [8, 40_000]];
const PACK_CACHE_PREFIX = "fieldcrm-pack-";

let world = null;

// The basemap's document, fetched once per page (from the service worker's copy offline).
export function loadWorld() {
  if (!world) {
    world = fetch(WORLD_URL).then((r) => {
      if (!r.ok) throw new Error(`basemap: ${r.status}`);
      return r.json();
    });
    world.catch(() => { world = null; });
  }
  return world;
}

// The layers under a map's markers, from the map settings ({tile_url, tile_attribution,
// tile_pack}); the world outline arrives a moment later (box.dataset.basemap says when).
export function addBasemap(L, map, config, box) {
  map.createPane("basemap").style.zIndex = 150; // under the tiles (200) and markers
  map.attributionControl.setPrefix(false);
  box.dataset.basemap = "loading";
  let removed = false;
  map.on("unload", () => { removed = true; });
  loadWorld().then(
    (data) => {
      if (removed) return;
      drawWorld(L, map, data);
      box.dataset.basemap = "world";
    },
    () => { box.dataset.basemap = "none"; },
  );
  if (config.tile_url) {
    // crossOrigin: the tiles come through CORS, so the service worker can keep them.
    L.tileLayer(config.tile_url, { maxZoom: 19, crossOrigin: true, attribution: config.tile_attribution }).addTo(map);
  }
  if (config.tile_pack) packLayer(L, config.tile_pack).addTo(map);
}

function drawWorld(L, map, data) {
  const renderer = L.svg({ pane: "basemap", padding: 0.2 });
  L.geoJSON(data, { renderer, interactive: false, style: () => ({ className: "basemap-land" }) }).addTo(map);
  map.attributionControl.addAttribution(WORLD_CREDIT);
  const labels = L.layerGroup([], { pane: "basemap" }).addTo(map);
  const draw = () => labelCities(L, map, labels, data.cities || []);
  map.on("moveend", draw);
  draw();
}

// The biggest cities in view, as many as fit without overlapping.
function labelCities(L, map, labels, cities) {
  labels.clearLayers();
  const zoom = map.getZoom();
  const least = (LABEL_POPULATION.find(([z]) => zoom <= z) || [0, 15_000])[1];
  const bounds = map.getBounds().pad(0.1);
  const placed = [];
  for (const [name, lng, lat, population] of cities) {
    if (population < least || placed.length >= MAX_LABELS) break;
    if (!bounds.contains([lat, lng])) continue;
    const at = map.latLngToContainerPoint([lat, lng]);
    if (placed.some((p) => Math.abs(p.x - at.x) < 90 && Math.abs(p.y - at.y) < 22)) continue;
    placed.push(at);
    const icon = L.divIcon({ className: "basemap-city", html: h("span", {}, name), iconSize: null });
    L.marker([lat, lng], { icon, pane: "basemap", interactive: false, keyboard: false }).addTo(labels);
  }
}

export function packCacheName(pack) {
  return `${PACK_CACHE_PREFIX}${pack.version}`;
}

// A tile of the pack: the phone's copy, else the server's (kept for next time), else none.
async function packTile(pack, url) {
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
  const PackLayer = L.GridLayer.extend({
    createTile(coords, done) {
      const img = h("img", { alt: "" });
      const url = L.Util.template(pack.url, coords);
      packTile(pack, url).then(
        (blob) => {
          if (!blob) return done(null, img); // an empty square: the layers under it show
          img.onload = () => { URL.revokeObjectURL(img.src); done(null, img); };
          img.src = URL.createObjectURL(blob);
        },
        () => done(null, img),
      );
      return img;
    },
  });
  const [west, south, east, north] = pack.bounds || [];
  return new PackLayer({
    attribution: pack.attribution,
    minZoom: pack.min_zoom,
    maxNativeZoom: pack.max_zoom,
    maxZoom: 19,
    bounds: pack.bounds && pack.bounds.length === 4 ? [[south, west], [north, east]] : undefined,
    zIndex: 2,
  });
}

// Every tile of the pack's box, its zooms one by one; onProgress(done, total). Answers how
// many tiles the phone now keeps. Older packs' tiles are dropped first.
export async function keepPack(pack, onProgress) {
  for (const name of await caches.keys()) {
    if (name.startsWith(PACK_CACHE_PREFIX) && name !== packCacheName(pack)) await caches.delete(name);
  }
  const urls = packTileUrls(pack);
  let done = 0;
  let kept = 0;
  const next = async () => {
    while (urls.length) {
      const url = urls.pop();
      if (await packTile(pack, url)) kept += 1;
      onProgress(++done, done + urls.length);
    }
  };
  await Promise.all([next(), next(), next(), next()]);
  return kept;
}

export function packTileUrls(pack) {
  const [west, south, east, north] = pack.bounds || [-180, -85, 180, 85];
  const urls = [];
  for (let z = pack.min_zoom; z <= pack.max_zoom; z++) {
    const [x0, y0] = tileOf(north, west, z);
    const [x1, y1] = tileOf(south, east, z);
    for (let x = x0; x <= x1; x++) {
      for (let y = y0; y <= y1; y++) urls.push(pack.url.replace("{z}", z).replace("{x}", x).replace("{y}", y));
    }
  }
  return urls;
}

function tileOf(lat, lng, z) {
  const n = 2 ** z;
  const rad = (Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180;
  const x = Math.floor(((lng + 180) / 360) * n);
  const y = Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n);
  return [Math.min(n - 1, Math.max(0, x)), Math.min(n - 1, Math.max(0, y))];
}
