// "Order my stops" on Today: the accounts of today's tasks, put in the order that makes the
// drive shortest from where the rep is (pwa/js/route.js, the server's rule, offline), with
// each leg's length, the total and what it saves over the order listed, and a directions
// link per stop that opens the phone's maps app.

import { directionsHref, formatDistance, hasPosition } from "../map.js";
import { planRoute, MAX_STOPS } from "../route.js";
import { button, h, link } from "../ui.js";

const GEO_TIMEOUT_MS = 10_000;

// The last plan, kept while Today is redrawn; dropped when the day's stops change.
let planned = null;

function here() {
  return new Promise((resolve) => {
    if (!("geolocation" in navigator)) {
      resolve(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude }),
      () => resolve(null),
      { enableHighAccuracy: false, timeout: GEO_TIMEOUT_MS, maximumAge: 300_000 },
    );
  });
}

// The accounts the due tasks are at, once each, in the order listed.
export function dayStops(tasks, accountsById) {
  const seen = new Set();
  const stops = [];
  const placeless = [];
  for (const task of tasks) {
    const account = accountsById.get(task.account_id);
    if (!account || seen.has(account.id)) continue;
    seen.add(account.id);
    (hasPosition(account) ? stops : placeless).push(account);
  }
  return { stops: stops.slice(0, MAX_STOPS), placeless };
}

export function routeSection(tasks, accountsById) {
  const { stops, placeless } = dayStops(tasks, accountsById);
  if (stops.length < 2) return null;
  const key = stops.map((a) => a.id).join(",");
  if (planned && planned.key !== key) planned = null;

  const body = h("div", { testid: "today-route-body" });
  const show = () => body.replaceChildren(...(planned ? planView(planned) : []));
  const order = button("Order my stops", "today-route-order", async (event) => {
    const btn = event.currentTarget;
    btn.disabled = true;
    btn.textContent = "Finding where you are…";
    const start = await here();
    const from = start || { lat: stops[0].lat, lng: stops[0].lng };
    const route = planRoute(from, stops);
    planned = { key, route, stops, fromHere: !!start };
    btn.disabled = false;
    btn.textContent = "Order my stops again";
    show();
  });
  if (planned) order.textContent = "Order my stops again";
  show();
  return h(
    "section",
    { class: "card", testid: "today-route" },
    h("h2", {}, `Route (${stops.length} stops)`),
    h("div", { class: "actions" }, order),
    placeless.length
      ? h(
          "p",
          { class: "hint", testid: "today-route-placeless" },
          `Not on the route, no position yet: ${placeless.map((a) => a.name).join(", ")}.`,
        )
      : null,
    body,
  );
}

function planView({ route, stops, fromHere }) {
  const saved = route.asGivenM - route.distanceM;
  const summary =
    `${formatDistance(route.distanceM)} in all` +
    (saved >= 1 ? `, ${formatDistance(saved)} less than in the order listed.` : ", the order listed was already the shortest.");
  return [
    h(
      "p",
      { class: "row-sub", testid: "today-route-summary", dataset: { metres: String(Math.round(route.distanceM)) } },
      (fromHere ? "From where you are: " : "Your position is not known: from the first stop. ") + summary,
    ),
    h(
      "ol",
      { class: "list route" },
      route.order.map((index, i) => {
        const account = stops[index];
        return h(
          "li",
          { class: "row", testid: "today-route-stop", dataset: { id: account.id } },
          h(
            "div",
            { class: "row-main" },
            link(`${i + 1}. ${account.name}`, `#/account/${account.id}`, "today-route-account", "row-title"),
            h("span", { class: "row-sub" }, `${formatDistance(route.legsM[i])} from the ${i ? "stop before" : "start"}`),
          ),
          link("Directions", directionsHref(account), "today-route-directions", "button-link small"),
        );
      }),
    ),
  ];
}
