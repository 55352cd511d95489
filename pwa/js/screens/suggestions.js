// Today's suggestions: my accounts not visited for a month that lie near today's stops (or
// near each other when nothing is planned with a position), nearest first, each one tap
// from a planned visit today (on the route at once). Read from the phone, offline.

import { t } from "../i18n.js";
import { approximateDistanceM, formatDistance, hasPosition } from "../map.js";
import { formatDate, h, link, section } from "../ui.js";
import { planVisitButton } from "./route-plan.js";

export const NOT_VISITED_DAYS = 30;
const NEAR_M = 5_000;
const NEAR_DEG = 0.05; // of latitude: more than NEAR_M (5.5 km) anywhere
const SHOWN = 5;
const DAY_MS = 86_400_000;

function lastVisitMs(account) {
  return account.last_visit_at ? new Date(account.last_visit_at).getTime() : null;
}

// [{account, metres, stop}] for my accounts due a visit, within NEAR_M of a stop.
export function suggestions(accounts, stops, userId, now = Date.now()) {
  const stopIds = new Set(stops.map((s) => s.id));
  const placed = stops.filter(hasPosition);
  const found = [];
  for (const account of accounts) {
    if (account.owner_id !== userId || !hasPosition(account) || stopIds.has(account.id)) continue;
    if (account.status === "inactive") continue;
    const last = lastVisitMs(account);
    if (last !== null && now - last < NOT_VISITED_DAYS * DAY_MS) continue;
    let best = null;
    for (const stop of placed) {
      if (Math.abs(stop.lat - account.lat) > NEAR_DEG) continue; // 10,000 accounts x the stops
      const metres = approximateDistanceM(stop.lat, stop.lng, account.lat, account.lng);
      if (metres <= NEAR_M && (!best || metres < best.metres)) best = { metres, stop };
    }
    if (best) found.push({ account, ...best });
  }
  return found.sort((a, b) => a.metres - b.metres).slice(0, SHOWN);
}

// `found`: suggestions() of the day.
export function suggestionsSection(found) {
  if (!found.length) return null;
  return section(t("Nearby, not visited for {days} days", { days: NOT_VISITED_DAYS }), "today-suggestions",
    h("ul", { class: "list route" }, found.map(({ account, metres, stop }) => h("li",
      { class: "row", testid: "today-suggestion", dataset: { id: account.id } },
      h("div", { class: "row-main" },
        link(account.name, `#/account/${account.id}`, "today-suggestion-account", "row-title"),
        h("span", { class: "row-sub" },
          `${t("{distance} from {place}", { distance: formatDistance(metres, { approximate: true }), place: stop.name })} · ${
            account.last_visit_at ? t("last visit {date}", { date: formatDate(account.last_visit_at) }) : t("never visited")}`)),
      planVisitButton(account, "today-suggestion-plan")))));
}
