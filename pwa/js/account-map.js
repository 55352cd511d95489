// The account screen's small map (docs/map.md, "The account's map"): loaded with import()
// when an account with a position is opened, so its code weighs nothing at startup.
//
// A still map centred on the account: our own pin at its centre (drawn before Leaflet and
// kept when Leaflet or the tiles cannot come, so offline it is a pin on plain land with the
// address), the whole box a link to the phone's maps app. It does not move, so nothing in
// it takes a gesture or the keyboard; the credits are plain text, not links inside a link.

import { mark, t } from "./i18n.js";
import { createMap, directionsHref, loadLeaflet, mapConfig, positionText, removeMap } from "./map.js";
import { h } from "./ui.js";

// How close: a position placed at a postcode or a city centre is shown with its surroundings.
const ZOOM = { postcode: 14, city: 12 };
const NOTE = {
  street: mark("Placed from its address: set it on site to be exact."),
  postcode: mark("Placed at its postcode: set it on site to be exact."),
  city: mark("Placed at its city centre: set it on site to be exact."),
  unknown: mark("Placed from its address: set it on site to be exact."),
};
const STILL = {
  zoomControl: false, dragging: false, touchZoom: false, doubleClickZoom: false,
  scrollWheelZoom: false, boxZoom: false, keyboard: false, tap: false,
};

const plain = (html) => new DOMParser().parseFromString(html, "text/html").body.textContent.trim();

// The map of `account` (which has a position), with `address` written under its pin.
// Answers {el, remove}.
export function accountMap(account, address) {
  const credit = h("span", { class: "account-map-credit", testid: "account-map-credit" });
  const box = h("div", { class: "account-map-box", testid: "account-map-box", role: "img",
    "aria-label": t("Map of where {name} is", { name: account.name }), dataset: { state: "plain" } },
    h("span", { class: "account-map-pin", "aria-hidden": "true" }),
    h("span", { class: "account-map-label", "aria-hidden": "true" }, address || account.name),
    credit);
  const note = NOTE[account.geo_precision];
  const el = h("div", { class: "account-map", testid: "account-map" },
    h("a", { href: directionsHref(account), class: "account-map-link", testid: "account-map-open",
      rel: "noopener" },
      box,
      // For a screen reader: the coordinates and where they came from.
      h("span", { class: "visually-hidden", testid: "account-map-position" }, positionText(account)),
      h("span", { class: "account-map-open" }, t("Open in your maps app"))),
    note ? h("p", { class: "hint", testid: "account-map-note" }, t(note)) : null);

  let map = null;
  let resized = null;
  let gone = false;
  (async () => {
    if (!box.isConnected) await new Promise((resolve) => requestAnimationFrame(resolve));
    const [L, config] = await Promise.all([loadLeaflet(), mapConfig()]);
    if (gone || !box.isConnected) return;
    map = createMap(L, box, config, STILL);
    // The account at the centre, under the pin, whatever the box's size (it grows with the text).
    const centre = () => map.invalidateSize(false).setView([account.lat, account.lng],
      ZOOM[account.geo_precision] || 16, { animate: false });
    centre();
    resized = new ResizeObserver(() => map && centre());
    resized.observe(box);
    // Leaflet's credits are links; in a link they would be links in a link: kept as text.
    map.attributionControl.remove();
    credit.textContent = [config.tile_url && config.tile_attribution, config.tile_pack && config.tile_pack.attribution,
      "Natural Earth, GeoNames"].filter(Boolean).map(plain).join(" · ");
    box.append(credit); // over Leaflet's panes, as the pin and the label
    box.dataset.state = "map";
  })().catch(() => { box.dataset.state = "plain"; }); // Leaflet not on the phone: the pin on plain land

  return { el, remove: () => { gone = true; if (resized) resized.disconnect(); removeMap(map); map = null; } };
}
