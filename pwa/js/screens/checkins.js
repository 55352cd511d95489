// Today's check-ins: the team's verified visits of today, on a map and by rep, from the
// visits this phone has synced. A position shows only where a visit was logged: fieldcrm
// never tracks anyone between visits. Managers and admins only.

import { t, tn } from "../i18n.js";
import { authorName } from "../components.js";
import { drawPoints, removeMap } from "../map.js";
import { allRows } from "../records.js";
import { userNames } from "../session.js";
import { isManager, todaysCheckins } from "../team.js";
import { empty, formatTime, h, link, section } from "../ui.js";

const T = {
  title: t("Today's check-ins"),
  notManager: t("This screen is for managers."),
  lead: t("Verified visits logged today, where each was logged. No one is tracked between visits."),
  count: (n, reps) => t("{checkins} by {reps} today.", {
    checkins: tn("{n} verified check-in", "{n} verified check-ins", n), reps: tn("{n} rep", "{n} reps", reps) }),
  none: t("No verified check-ins today yet (as synced to this phone)."),
  mapLabel: t("Map of today's check-ins"),
  back: t("Back to Team"),
  at: (time, account) => `${time} · ${account}`, // a time and a name: no words
  anAccount: t("an account"),
};

const COLOURS = 6;

export async function checkinsScreen() {
  if (!isManager()) {
    return { title: T.title, el: h("div", { class: "screen" }, h("h1", {}, T.title), empty(T.notManager, "team-not-manager")) };
  }
  const [visits, names, accounts] = await Promise.all([todaysCheckins(), userNames(), allRows("accounts")]);
  const accountNames = new Map(accounts.map((a) => [a.id, a.name]));
  const reps = [...new Set(visits.map((v) => v.user_id || ""))]
    .map((id) => ({ id, name: authorName(names, id) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const colour = new Map(reps.map((r, i) => [r.id, `rep-${i % COLOURS}`]));
  const at = (v) => T.at(formatTime(new Date(v.started_at).getTime()), accountNames.get(v.account_id) || T.anAccount);
  const box = h("div", { class: "nearby-map", testid: "checkins-map", role: "region", "aria-label": T.mapLabel });
  const note = h("p", { class: "hint", testid: "checkins-map-note", hidden: true });
  const points = visits.map((v) => ({ lat: v.lat, lng: v.lng, className: `nearby-marker checkin-marker ${colour.get(v.user_id || "")}`,
    popup: () => h("div", { class: "stack" }, h("strong", {}, authorName(names, v.user_id)),
      link(at(v), `#/visit/${v.id}`)) }));
  const maps = { shown: null };
  if (points.length) drawPoints(box, note, points, maps.shown, { cluster: "plain" }).then((m) => { maps.shown = m; });

  const el = h("div", { class: "screen team" },
    h("div", { class: "title-row" }, h("h1", {}, T.title), link(T.back, "#/team", "checkins-back", "button-link")),
    h("p", { class: "lead" }, T.lead),
    h("p", { class: "count", testid: "checkins-count", dataset: { count: String(visits.length) } },
      visits.length ? T.count(visits.length, reps.length) : T.none),
    points.length ? [box, note] : null,
    reps.map((r) => section(r.name, "checkins-rep",
      h("ul", { class: "list" }, visits.filter((v) => (v.user_id || "") === r.id).map((v) =>
        h("li", { class: "row", testid: "checkin-row", dataset: { id: v.id, user: r.id } },
          h("span", { class: `nearby-dot ${colour.get(r.id)}`, "aria-hidden": "true" }),
          link(at(v), `#/visit/${v.id}`, "checkin-open", "row-main")))))));
  el.querySelectorAll("[data-testid=checkins-rep]").forEach((s, i) => { s.dataset.id = reps[i].id; });
  return { title: T.title, el, live: true, leave: () => removeMap(maps.shown) };
}
