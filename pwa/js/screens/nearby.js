// Nearby: the accounts around the rep, on a map and in a list sorted by distance, each with
// one tap to log a visit and one for directions. Online the server ranks them by geodesic
// distance (GET /api/nearby); offline the phone measures its own copy of the team's accounts,
// approximately, and says so. "Capture a prospect here" saves a new account at the rep's
// position through the normal local write path, so it syncs like any other.

import { drawRows } from "../chunks.js";
import { formatNumber, t, tn } from "../i18n.js";
import { apiFetch, NetworkError } from "../api.js";
import { COLOUR_MODES, DEFAULT_COLOUR, lastVisits, legend } from "../map-layers.js";
import {
  approximateDistanceM, directionsHref, formatDistance, hasPosition, loadLeaflet, mapConfig,
  NearbyMap, removeMap,
} from "../map.js";
import { duplicateGate, heldAccounts, keepWarm } from "../duplicates.js";
import { on } from "../events.js";
import { keptRows, newId, pendingKeys, rowsById, saveWrites } from "../records.js";
import { replaceQuery } from "../router.js";
import { planVisitButton } from "./route-plan.js";
import { session } from "../session.js";
import { LABELS, field, h, link, options, toast } from "../ui.js";

const RADII = { 1000: "1 km", 5000: "5 km", 25000: "25 km", 100000: "100 km" };
const DEFAULT_RADIUS = 25000;
const LIMIT = 100;
const FIRST_ROWS = 10; // drawn at once; the others as the list scrolls near (js/chunks.js)
const GEO_TIMEOUT_MS = 20_000;

// One map for every visit of Nearby: its box moves into each new screen with its markers,
// and only the accounts that changed are drawn again. A big territory's 10,000 markers
// placed again on each visit kept a cheap phone busy for seconds after the list was
// drawn, slowing whatever screen came next. `owner`: the screen drawing on it now;
// `drawn`: what its markers show. Dropped at sign-out.
let kept = null; // {box, map, owner, drawn}
on("session", (s) => {
  if (kept && !(s && s.token)) {
    removeMap(kept.map);
    kept = null;
  }
});

// Always a fresh fix: a minute-old one is a town away on the road.
function locate() {
  return new Promise((resolve, reject) => {
    if (!("geolocation" in navigator)) {
      reject(new Error(t("This phone cannot share its location.")));
      return;
    }
    navigator.geolocation.getCurrentPosition(resolve, reject, {
      enableHighAccuracy: true,
      timeout: GEO_TIMEOUT_MS,
      maximumAge: 0,
    });
  });
}

function geoError(err) {
  if (err && err.code === 1) return t("Location permission denied: allow it to see what is near you.");
  if (err && err.code === 3) return t("No GPS fix in time. Try again outdoors.");
  return (err && err.message) || t("Location unavailable.");
}

// The phone's own ranking: every local account with a position, by approximate distance.
export function measureLocally(accounts, position, radiusM, status, limit = LIMIT) {
  return accounts
    .filter((a) => hasPosition(a) && (!status || a.status === status))
    .map((account) => ({
      account,
      distance_m: approximateDistanceM(position.lat, position.lng, account.lat, account.lng),
      approximate: true,
    }))
    .filter((r) => r.distance_m <= radiusM)
    .sort((a, b) => a.distance_m - b.distance_m || (a.account.id < b.account.id ? -1 : 1))
    .slice(0, limit);
}

// The server's answer with this phone's unsent writes on top: an account edited or captured
// here and not synced yet is measured here (approximately), the rest keep the server's figure.
function withLocalWrites(serverResults, local, pending, position, radiusM, status) {
  const localById = rowsById(local);
  const unsent = (id) => pending.has(`accounts/${id}`);
  const kept = serverResults
    .filter((r) => !unsent(r.account.id))
    .map((r) => ({ account: localById.get(r.account.id) || r.account, distance_m: r.distance_m }));
  const edited = pending.size ? measureLocally(local.filter((a) => unsent(a.id)), position, radiusM, status) : [];
  return [...kept, ...edited].sort((a, b) => a.distance_m - b.distance_m).slice(0, LIMIT);
}

async function search(position, radiusM, status) {
  // The very array kept (records.js): read here, never changed. Read while the server is
  // asked (a failure is reported where it is awaited).
  const reading = Promise.all([keptRows("accounts"), pendingKeys()]);
  reading.catch(() => {});
  const token = session().token;
  if (token && navigator.onLine) {
    const params = new URLSearchParams({
      lat: String(position.lat), lng: String(position.lng), radius_m: String(radiusM), limit: String(LIMIT),
    });
    if (status) params.set("status", status);
    try {
      const [result, [local, pending]] = await Promise.all([
        apiFetch(`/api/nearby?${params}`, { token, timeoutMs: 8000 }), reading]);
      if (result.status === 200 && result.data && Array.isArray(result.data.results)) {
        const results = withLocalWrites(result.data.results, local, pending, position, radiusM, status);
        return { source: "server", results, local, pending };
      }
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
    }
  }
  const [local, pending] = await reading;
  return { source: "phone", results: measureLocally(local, position, radiusM, status), local, pending };
}

function popupFor(account) {
  return h("div", { class: "stack" },
    link(account.name || t("Account"), `#/account/${account.id}`, null, "row-title"),
    h("div", { class: "actions" },
      link(t("Log visit"), `#/visit/new?account=${account.id}`, null, "small button-link"),
      planVisitButton(account)));
}

function nearbyRow({ account, distance_m: distance, approximate }) {
  const status = account.status || "prospect";
  const place = [account.city, account.region].filter(Boolean).join(", ");
  return h("li", { class: "row", testid: "nearby-row", dataset: { id: account.id, distance: String(Math.round(distance)) } },
    h("a", { href: `#/account/${account.id}`, class: "row-main", testid: "nearby-open" },
      h("span", { class: "row-title", testid: "nearby-name" }, account.name),
      h("span", { class: "row-sub" },
        h("span", { testid: "nearby-distance" }, formatDistance(distance, { approximate })),
        place ? ` · ${place}` : "")),
    h("span", { class: `pill pill-${status}` }, LABELS.status[status] || status),
    h("div", { class: "row-actions" },
      link(t("Log visit"), `#/visit/new?account=${account.id}`, "nearby-log-visit", "small button-link primary"),
      h("a", { href: directionsHref(account), class: "small button-link", testid: "nearby-directions",
        "aria-label": t("Directions to {name}", { name: account.name }) }, t("Directions"))));
}

export async function nearbyScreen(_params, query) {
  const mine = {}; // this screen, as the kept map's owner
  if (kept) kept.owner = mine;
  let radius = Number(query.get("radius")) in RADII ? Number(query.get("radius")) : DEFAULT_RADIUS;
  let status = LABELS.status[query.get("status")] ? query.get("status") : "";
  let colour = COLOUR_MODES[query.get("colour")] ? query.get("colour") : DEFAULT_COLOUR;
  let position = null;
  let nearbyMap = kept ? kept.map : null;
  let resized = false; // the kept map measured again in this screen
  let refit = true;

  const positionLine = h("p", { class: "hint", testid: "nearby-position", "aria-live": "polite",
    dataset: { state: "locating" } }, t("Finding your position…"));
  const source = h("p", { class: "notice", testid: "nearby-source", hidden: true });
  const count = h("p", { class: "count", testid: "nearby-count", "aria-live": "polite" });
  const list = h("ul", { class: "list", testid: "nearby-list" });
  const mapBox = kept ? kept.box : h("div", { class: "nearby-map", testid: "nearby-map", role: "region",
    "aria-label": t("Map of the accounts near you") });
  delete mapBox.dataset.accounts; // set again once this screen's accounts are on it
  // The kept map joins the page after the list is drawn: laying out its markers, outlines
  // and names with the rest of the screen made the list wait. An empty box of its size
  // stands in for it until then.
  const mapSlot = kept ? h("div", { class: "nearby-map", "aria-hidden": "true" }) : mapBox;
  const mapNote = h("p", { class: "hint", testid: "nearby-map-note", hidden: true });
  const colourField = field({ name: "colour", label: t("Colour"), type: "select", testid: "map-colour",
    value: colour, options: Object.entries(COLOUR_MODES) });
  let mapLegend = legend(colour);
  const radiusField = field({ name: "radius", label: t("Within"), type: "select", testid: "nearby-radius",
    value: String(radius), options: Object.entries(RADII) });
  const statusField = field({ name: "status", label: t("Status"), type: "select", testid: "nearby-status-filter",
    value: status, options: options(LABELS.status, { blank: t("All") }) });
  const relocate = h("button", { type: "button", class: "small", testid: "nearby-locate" }, t("Update"));
  const capture = h("button", { type: "button", class: "primary", testid: "nearby-capture", disabled: true },
    t("Capture a prospect here"));
  const captureName = field({ name: "capture_name", label: t("Prospect's name"), testid: "capture-name",
    maxlength: 200, required: true });
  const captureError = h("p", { class: "error", role: "alert", testid: "capture-error", hidden: true });
  const captureDuplicate = h("div", { class: "notice", role: "alert", testid: "duplicate-warning", hidden: true });
  const captureForm = h("form", { class: "stack card", testid: "capture-form", hidden: true, novalidate: true },
    captureName, captureError, captureDuplicate,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", testid: "capture-save" }, t("Save here")),
      h("button", { type: "button", testid: "capture-cancel", onclick: () => { captureForm.hidden = true; } },
        t("Cancel"))));

  async function drawMap(found) {
    // The list is painted first (placing 10,000 markers takes a big territory's phone
    // hundreds of ms); the first position can arrive before the screen is in the page.
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)));
    // and the map once the phone is idle: its layout and paint (130 ms at 4x for the kept
    // one) wait for a tap on another tab to be answered; a screen left by then draws none.
    await new Promise((resolve) => (window.requestIdleCallback
      ? requestIdleCallback(resolve, { timeout: 500 }) : setTimeout(resolve, 50)));
    if (kept && kept.owner !== mine) return;
    if (mapSlot !== mapBox && mapSlot.isConnected) mapSlot.replaceWith(mapBox);
    if (!mapBox.isConnected) return;
    if (!nearbyMap) {
      try {
        const [L, config] = await Promise.all([loadLeaflet(), mapConfig()]);
        if (!mapBox.isConnected || nearbyMap) return;
        nearbyMap = new NearbyMap(L, mapBox, config, popupFor);
        kept = { box: mapBox, map: nearbyMap, owner: mine, drawn: null };
        resized = true;
      } catch (err) {
        mapBox.hidden = true;
        mapNote.textContent = `${(err && err.message) || t("The map could not be loaded.")} ${t("The list below works without it.")}`;
        mapNote.hidden = false;
        return;
      }
    }
    const shared = kept;
    if (!shared || shared.map !== nearbyMap) return; // signed out meanwhile
    if (!resized) {
      nearbyMap.map.invalidateSize(false); // its box was out of the page since last drawn
      resized = true;
    }
    nearbyMap.showPosition(position, radius, found.results, { refit });
    refit = false;
    // The markers already show these accounts in these colours (the same rows, no unsent
    // visit more or less, within the hour): nothing to go through again.
    const unsentVisits = [...found.pending].filter((key) => key.startsWith("visits/")).join();
    const drawing = [found.local, status, colour, Math.floor(Date.now() / 3_600_000), Math.round(position.lng),
      unsentVisits];
    if (!shared.drawn || drawing.some((x, i) => x !== shared.drawn.what[i])) {
      // Every account of the status, not only the nearest.
      const shown = found.local.filter((a) => !status || a.status === status);
      const count = await nearbyMap.showAccounts(shown, colour, await lastVisits(shown), position);
      shared.drawn = { what: drawing, count };
    }
    if (shared.owner === mine) mapBox.dataset.accounts = String(shared.drawn.count);
  }

  async function refresh() {
    if (!position) return;
    const found = await search(position, radius, status);
    source.dataset.source = found.source;
    source.textContent = found.source === "server"
      ? t("Distances measured by the server.")
      : t("Offline: distances measured on this phone from your synced accounts; they are approximate.");
    source.hidden = false;
    // The list starts under the map, a screen down: its first rows now, the others as it
    // scrolls near (a hundred rows took a cheap phone a tenth of a second to draw).
    drawRows(list, found.results, nearbyRow, { first: FIRST_ROWS });
    const n = found.results.length;
    count.dataset.count = String(n);
    count.dataset.capped = n >= LIMIT ? "yes" : "no";
    count.textContent = n >= LIMIT
      ? t("The {limit} nearest accounts within {radius} (there are more)", { limit: LIMIT, radius: RADII[radius] })
      : n ? tn("{n} account within {radius}", "{n} accounts within {radius}", n, { radius: RADII[radius] })
        : t("No accounts with a position within {radius}.", { radius: RADII[radius] });
    await drawMap(found);
  }

  async function findMe() {
    positionLine.dataset.state = "locating";
    positionLine.textContent = t("Finding your position…");
    relocate.disabled = true;
    try {
      const pos = await locate();
      position = { lat: pos.coords.latitude, lng: pos.coords.longitude, accuracy: pos.coords.accuracy };
      positionLine.dataset.state = "located";
      positionLine.textContent = t("You are here, within {metres} m.", { metres: formatNumber(Math.round(position.accuracy)) });
      capture.disabled = false;
      refit = true;
    } catch (err) {
      positionLine.dataset.state = "error";
      positionLine.textContent = geoError(err);
    } finally {
      relocate.disabled = false;
    }
    await onData();
  }

  function onFilter(event) {
    radius = Number(radiusField.querySelector("select").value);
    status = statusField.querySelector("select").value;
    colour = colourField.querySelector("select").value;
    const fresh = legend(colour);
    mapLegend.replaceWith(fresh);
    mapLegend = fresh;
    const q = new URLSearchParams();
    if (radius !== DEFAULT_RADIUS) q.set("radius", String(radius));
    if (status) q.set("status", status);
    if (colour !== DEFAULT_COLOUR) q.set("colour", colour);
    replaceQuery("/nearby", q);
    refit = event.target.name !== "colour"; // a new colour keeps the view
    refresh();
  }
  radiusField.querySelector("select").addEventListener("change", onFilter);
  statusField.querySelector("select").addEventListener("change", onFilter);
  colourField.querySelector("select").addEventListener("change", onFilter);
  relocate.addEventListener("click", () => findMe());
  let cool = null;
  capture.addEventListener("click", () => {
    if (!cool) cool = keepWarm(); // the duplicate check's accounts, read before "Save"
    captureForm.hidden = false;
    captureError.hidden = true;
    captureName.querySelector("input").focus();
  });
  const captureGate = duplicateGate(captureDuplicate,
    (account) => link(t("Open it"), `#/account/${account.id}`, "duplicate-open", "button-link"),
    () => captureForm.requestSubmit());
  captureForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = captureName.querySelector("input");
    const name = input.value.trim();
    if (!name) {
      captureError.textContent = t("Give the prospect a name.");
      captureError.hidden = false;
      input.focus();
      return;
    }
    if (!position) return;
    const fields = { name, status: "prospect", lat: position.lat, lng: position.lng };
    if (!captureGate(fields, await heldAccounts())) return;
    await saveWrites([{ table: "accounts", id: newId(), op: "upsert", fields }]);
    input.value = "";
    captureForm.hidden = true;
    toast(t("{name} saved here", { name }));
  });

  const el = h("div", { class: "screen" },
    h("h1", {}, t("Nearby")),
    h("div", { class: "title-row" }, positionLine, relocate),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, radiusField, statusField),
    mapSlot,
    mapNote,
    h("div", { class: "filters" }, colourField),
    mapLegend,
    h("div", { class: "actions" }, capture),
    captureForm,
    source,
    count,
    list);
  const onData = () => refresh().catch((err) => {
    source.dataset.source = "error";
    source.textContent = t("Could not update the list: {error}", { error: (err && err.message) || err });
    source.hidden = false;
  });
  findMe();
  return { title: t("Nearby"), el, onData, leave: () => cool && cool() };
}
