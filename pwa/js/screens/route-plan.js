// "Order my stops" on Today: the accounts of today's tasks, put in the order that makes the
// drive shortest from where the rep is (pwa/js/route.js, the server's rule, offline), with
// each leg's length, the total and what it saves over the order listed, and a directions
// link per stop that opens the phone's maps app; the route on a map; stops moved by hand.

import { formatList, t, tn } from "../i18n.js";
import { directionsHref, drawMap, formatDistance, hasPosition } from "../map.js";
import { drawRoute } from "../map-layers.js";
import { newId, rowsOfAccount, saveWrites } from "../records.js";
import { legsOf, planRoute, MAX_STOPS } from "../route.js";
import { me } from "../session.js";
import { button, h, link, toast } from "../ui.js";

const GEO_TIMEOUT_MS = 10_000;

// The last plan, kept while Today is redrawn; dropped when the day's stops change.
let planned = null;
let shownMap = null;

// Where the rep is now: a fresh fix (a five-minute-old one is kilometres back on the road),
// coarse is enough to order the stops.
function here() {
  return new Promise((resolve) => {
    if (!("geolocation" in navigator)) {
      resolve(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude }),
      () => resolve(null),
      { enableHighAccuracy: false, timeout: GEO_TIMEOUT_MS, maximumAge: 0 },
    );
  });
}

function tonight(now) {
  const night = new Date(now);
  night.setHours(23, 59, 0, 0);
  return night;
}

// Whether an open planned visit of mine (or nobody's) at the account is due by tonight.
async function plannedToday(accountId, now = new Date()) {
  const user = me();
  const night = tonight(now);
  return (await rowsOfAccount("tasks", accountId)).some((task) => task.kind === "visit" && !task.done && task.due_at &&
    new Date(task.due_at) <= night && (!task.assignee_id || (user && task.assignee_id === user.id)));
}

// Today's plan gets a visit at an account (the map's popup): a planned visit (a task of kind
// `visit`, SPEC section 14) for me, due at the next full hour (before midnight late in the
// day), written like any other write, offline too. Answers false when one was there already.
export async function planVisitToday(account, now = new Date()) {
  if (await plannedToday(account.id, now)) return false;
  const due = new Date(now);
  due.setHours(due.getHours() + 1, 0, 0, 0);
  const fields = { title: t("Visit {name}", { name: account.name || "" }).trim().slice(0, 200), kind: "visit", account_id: account.id,
    due_at: new Date(Math.min(due, tonight(now))).toISOString(), done: false };
  if (me()) fields.assignee_id = me().id;
  await saveWrites([{ table: "tasks", id: newId(), op: "upsert", fields }]);
  return true;
}

// t("Plan visit") (a map popup's button, Today's suggestions): into today's plan and route in
// one tap, once.
export function planVisitButton(account, testid = "map-plan-visit") {
  const planned = () => {
    plan.disabled = true;
    plan.textContent = t("In today's plan");
    plan.dataset.planned = "yes";
  };
  const plan = button(t("Plan visit"), testid, async () => {
    plan.disabled = true;
    if (await planVisitToday(account)) toast(t("{name} is in today's plan", { name: account.name }));
    planned();
  }, "small");
  plannedToday(account.id).then((yes) => yes && planned());
  return plan;
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

// `day`: dayStops() of the due tasks.
export function routeSection({ stops, placeless }) {
  if (stops.length < 2) return null;
  const key = stops.map((a) => a.id).join(",");
  if (planned && planned.key !== key) planned = null;

  const body = h("div", { testid: "today-route-body" });
  const show = () => {
    body.replaceChildren(...(planned ? planView(planned, move) : []));
    if (!planned) return;
    const { from, stops: all, route } = planned;
    const box = body.querySelector("[data-testid=today-route-map]");
    drawMap(box, null, shownMap, (L, map) => {
      drawRoute(L, map, from, route.order.map((i) => all[i]));
      box.dataset.stops = route.order.length;
    }).then((map) => { shownMap = map; });
  };
  // Moves the stop at place i of the order by `by` (-1: up, 1: down), focus kept on it.
  const move = (i, by) => {
    const { route, from } = planned;
    [route.order[i], route.order[i + by]] = [route.order[i + by], route.order[i]];
    route.legsM = legsOf(from, stops, route.order);
    route.distanceM = route.legsM.reduce((a, b) => a + b, 0);
    planned.byHand = true;
    show();
    const [up, down] = body.querySelectorAll("[data-testid=today-route-stop]")[i + by].querySelectorAll("button");
    (by < 0 && !up.disabled) || down.disabled ? up.focus() : down.focus();
  };
  const order = button(t("Order my stops"), "today-route-order", async (event) => {
    const btn = event.currentTarget;
    btn.disabled = true;
    btn.textContent = t("Finding where you are…");
    const start = await here();
    const from = start || { lat: stops[0].lat, lng: stops[0].lng };
    const route = planRoute(from, stops);
    planned = { key, route, stops, from, fromHere: !!start, shortestM: route.distanceM, byHand: false };
    btn.disabled = false;
    btn.textContent = t("Order my stops again");
    show();
  });
  if (planned) order.textContent = t("Order my stops again");
  show();
  return h(
    "section",
    { class: "card", testid: "today-route" },
    h("h2", {}, tn("Route ({n} stop)", "Route ({n} stops)", stops.length)),
    h("div", { class: "actions" }, order),
    placeless.length
      ? h(
          "p",
          { class: "hint", testid: "today-route-placeless" },
          t("Not on the route, no position yet: {names}.", { names: formatList(placeless.map((a) => a.name)) }),
        )
      : null,
    body,
  );
}

function planView({ route, stops, fromHere, shortestM, byHand }, move) {
  const saved = route.asGivenM - route.distanceM;
  const extra = route.distanceM - shortestM;
  const total = formatDistance(route.distanceM);
  let summary;
  if (byHand) {
    summary = extra >= 1
      ? t("{total} in all, in your order: {extra} more than the shortest.", { total, extra: formatDistance(extra) })
      : t("{total} in all, in your order, as short as the shortest.", { total });
  } else {
    summary = saved >= 1
      ? t("{total} in all, {saved} less than in the order listed.", { total, saved: formatDistance(saved) })
      : t("{total} in all, the order listed was already the shortest.", { total });
  }
  return [
    h(
      "p",
      { class: "row-sub", testid: "today-route-summary", dataset: { metres: String(Math.round(route.distanceM)) } },
      `${fromHere ? t("From where you are:") : t("Your position is not known: from the first stop.")} ${summary}`,
    ),
    h("div", { class: "nearby-map route-map", testid: "today-route-map", role: "region", "aria-label": t("Map of the route") }),
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
            h("span", { class: "row-sub" }, i ? t("{distance} from the stop before", { distance: formatDistance(route.legsM[i]) })
              : t("{distance} from the start", { distance: formatDistance(route.legsM[i]) })),
          ),
          h("div", { class: "row-actions" }, h("span", { class: "route-moves" },
            h("button", { type: "button", class: "small", testid: "today-route-up", disabled: i === 0,
              "aria-label": t("Move {name} up", { name: account.name }), onclick: () => move(i, -1) }, "↑"),
            h("button", { type: "button", class: "small", testid: "today-route-down",
              disabled: i === route.order.length - 1, "aria-label": t("Move {name} down", { name: account.name }), onclick: () => move(i, 1) }, "↓")),
            link(t("Directions"), directionsHref(account), "today-route-directions", "button-link small")),
        );
      }),
    ),
  ];
}
