// A day's route on a map: the line from the start through the stops in order, each stop
// numbered as in the list (pwa/js/screens/route-plan.js).

import { h } from "./ui.js";

// start: {lat, lng}; stops: [{lat, lng, name}] in driving order. Answers the layer drawn.
export function drawRoute(L, map, start, stops) {
  const path = [[start.lat, start.lng], ...stops.map((s) => [s.lat, s.lng])];
  const layer = L.featureGroup([
    L.polyline(path, { className: "route-line", interactive: false }),
    L.circleMarker(path[0], { radius: 8, className: "nearby-you", interactive: false }),
    ...stops.map((stop, i) =>
      L.marker([stop.lat, stop.lng], {
        icon: L.divIcon({ className: "route-stop", html: h("span", {}, String(i + 1)), iconSize: [26, 26] }),
        title: `${i + 1}. ${stop.name || ""}`,
        keyboard: false,
      })),
  ]).addTo(map);
  map.fitBounds(layer.getBounds().pad(0.15), { maxZoom: 16 });
  return layer;
}
