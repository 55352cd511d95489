// An area drawn on a Leaflet map with taps (campaigns, reassigning): a rectangle by two
// opposite corners, or a polygon corner by corner. Kept apart from map.js: it only adds
// layers and a click handler to a map that map.js drew. Which accounts are inside follows
// the server's rule (server/campaigns/area.py): straight lines between corners, in (lng, lat).

// [[lat, lng], ...] of an area {type, points}.
export function corners(area) {
  if (area.type !== "rectangle") return area.points;
  const [[a, b], [c, d]] = area.points;
  return [[a, b], [a, d], [c, d], [c, b]];
}

export function inArea(area, lat, lng) {
  if (typeof lat !== "number" || typeof lng !== "number") return false;
  const poly = corners(area);
  const lats = poly.map((p) => p[0]);
  const lngs = poly.map((p) => p[1]);
  if (lat < Math.min(...lats) || lat > Math.max(...lats) || lng < Math.min(...lngs) || lng > Math.max(...lngs)) return false;
  if (area.type === "rectangle") return true;
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [la, lo] = poly[i];
    const [lb, lob] = poly[j];
    if ((la > lat) !== (lb > lat) && lng < lo + ((lat - la) * (lob - lo)) / (lb - la)) inside = !inside;
  }
  return inside;
}

// Draw on `map` by taps. shape: "rectangle" | "polygon". onChange(area | null) after each
// tap: an area once it has a surface (two corners, or three for a polygon).
export function drawArea(L, map, onChange) {
  const layer = L.layerGroup().addTo(map);
  let shape = "rectangle";
  let points = [];
  const area = () => (shape === "rectangle" ? points.length === 2 : points.length >= 3)
    ? { type: shape, points: points.map((p) => [...p]) } : null;
  function redraw() {
    layer.clearLayers();
    for (const p of points) L.circleMarker(p, { radius: 5, className: "area-corner", interactive: false }).addTo(layer);
    const a = area();
    if (a) L.polygon(corners(a), { className: "area-shape", interactive: false }).addTo(layer);
    else if (points.length > 1) L.polyline(points, { className: "area-shape", interactive: false }).addTo(layer);
    map.getContainer().dataset.area = a ? JSON.stringify(a) : "";
    onChange(a);
  }
  function tap(e) {
    if (shape === "rectangle" && points.length === 2) points = [];
    points.push([+e.latlng.lat.toFixed(6), +e.latlng.lng.toFixed(6)]);
    redraw();
  }
  map.on("click", tap);
  map.doubleClickZoom.disable();
  map.getContainer().classList.add("drawing");
  return {
    shape(next) {
      shape = next;
      points = [];
      redraw();
    },
    undo() {
      points.pop();
      redraw();
    },
    clear() {
      points = [];
      redraw();
    },
  };
}
