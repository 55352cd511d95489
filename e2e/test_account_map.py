"""The account's position as a small map (issue 18, docs/map.md "The account's map"), at
360 px: street tiles under a pin at the account, the credits as text, the whole map one
link to the phone's maps app, named for a screen reader (the coordinates kept for it);
offline, at a place whose tiles were never seen, a pin on plain land with the address, no
broken grid; in French and at 200% text it holds and passes axe-core."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import expect

from e2e.a11y import check_axe
from e2e.pages import PHONE, App, Phones, Rest
from e2e.test_ergonomics import layout_problems, small_targets, text_size
from e2e.test_language import OVERFLOWS
from e2e.test_map import served, served_with_tiles

ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/126 Mobile"
# Whether anything in the map takes the keyboard, as a link in a link would.
FOCUSABLE_INSIDE = """(box) => [...box.querySelectorAll("a, button, input, [tabindex]")]
  .filter((el) => el.tabIndex >= 0).length"""
# The pin, the address under it and the credits: inside the map and apart; [] when so.
MAP_PARTS_APART = """() => {
  const box = document.querySelector("[data-testid=account-map-box]").getBoundingClientRect();
  const parts = [".account-map-pin", ".account-map-label", ".account-map-credit"]
    .map((s) => [s, document.querySelector(s).getBoundingClientRect()]);
  const problems = [];
  parts.forEach(([name, r], i) => {
    if (r.left < box.left || r.right > box.right || r.top < box.top || r.bottom > box.bottom) {
      problems.push(`${name} sticks out of the map`);
    }
    for (const [other, o] of parts.slice(i + 1)) {
      if (r.left < o.right && o.left < r.right && r.top < o.bottom && o.top < r.bottom) {
        problems.push(`${name} overlaps ${other}`);
      }
    }
  });
  return problems;
}"""


# Where the account is drawn, from the street tiles (Web Mercator, 256 px tiles named
# /z/x/y.png), in px from the map's centre, where the pin points; null without its tile.
ACCOUNT_OFF_CENTRE = """(box, [lat, lng]) => {
  const imgs = [...box.querySelectorAll("img.leaflet-tile-loaded")];
  if (!imgs.length) return null;
  const z = Number(new URL(imgs[0].src).pathname.split("/")[1]);
  const n = 256 * 2 ** z;
  const sin = Math.sin((lat * Math.PI) / 180);
  const px = ((lng + 180) / 360) * n;
  const py = (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * n;
  const path = `/${z}/${Math.floor(px / 256)}/${Math.floor(py / 256)}.png`;
  const tile = imgs.find((i) => new URL(i.src).pathname === path);
  if (!tile) return null;
  const t = tile.getBoundingClientRect();
  const b = box.getBoundingClientRect();
  const [x, y] = [t.left + (px % 256), t.top + (py % 256)];
  return [x - (b.left + b.width / 2), y - (b.top + b.height / 2)];
}"""


async def expect_pin_on(app: App, lat: float, lng: float) -> None:
    """The account is under the pin, at the map's centre (to 2 px), the box grown or not."""
    box = app.tid("account-map-box")
    off = None
    for _ in range(50):
        off = await box.evaluate(ACCOUNT_OFF_CENTRE, [lat, lng])
        if off and abs(off[0]) <= 2 and abs(off[1]) <= 2:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the account is drawn {off} px from the pin")


async def holds(
    app: App, name: str, artifacts: Path, at: tuple[float, float] | None = None
) -> None:
    for percent in (100, 200):
        await text_size(app, percent)
        if at:
            await expect_pin_on(app, *at)
        problems = await layout_problems(app) + await app.page.evaluate(OVERFLOWS)
        problems += await app.page.evaluate(MAP_PARTS_APART)
        assert problems == [], f"{name} at {percent}%: {problems}"
        assert await small_targets(app) == [], f"{name} at {percent}%"
        assert await app.scroll_width() <= PHONE["width"]
        await app.tid("account-map").scroll_into_view_if_needed()
        suffix = "-text200" if percent == 200 else ""
        await app.page.screenshot(path=artifacts / f"account-map-{name}{suffix}.png")
    await text_size(app, 100)
    await check_axe(app.page, f"account-map-{name}", artifacts)


async def test_the_account_screen_shows_its_position_on_a_small_map(
    tmp_path: Path, phones: Phones, artifacts: Path
) -> None:
    with served_with_tiles(tmp_path) as (tiles, server):
        server.add_user("alice")
        rest = await Rest.login(server.url, "alice")
        try:
            halles = await rest.create(
                "accounts", name="Les Halles de Lyon", street="102 Cours Lafayette",
                postal_code="69003", city="Lyon", country="France", lat=45.7631, lng=4.851,
            )  # fmt: skip
            grenoble = await rest.create(
                "accounts", name="Fromagerie des Alpes", street="4 place Grenette",
                postal_code="38000", city="Grenoble", lat=45.1904, lng=5.7268,
            )  # fmt: skip
            nowhere = await rest.create("accounts", name="Sans adresse")
        finally:
            await rest.close()
        app = await phones.signed_in(server.url, "alice", user_agent=ANDROID)

        await app.account.open(halles["id"])
        small = app.tid("account-map")
        box = small.get_by_test_id("account-map-box")
        await expect(box).to_have_attribute("data-state", "map")
        await expect(box.locator("img.leaflet-tile-loaded").first).to_be_visible()
        await expect(box).to_have_attribute("role", "img")
        await expect(box).to_have_attribute("aria-label", "Map of where Les Halles de Lyon is")
        await expect(box).to_contain_text("102 Cours Lafayette, 69003 Lyon, France")
        await expect(small.get_by_test_id("account-map-credit")).to_have_text(
            "© Test tiles · Natural Earth, GeoNames"
        )
        # One link, to the phone's maps app at the account; nothing in it takes a tap or a key.
        link = small.get_by_test_id("account-map-open")
        await expect(link).to_have_attribute(
            "href", "geo:45.7631,4.851?q=45.7631,4.851(Les%20Halles%20de%20Lyon)"
        )
        assert await box.evaluate(FOCUSABLE_INSIDE) == 0
        await expect(small.locator(".leaflet-control-zoom")).to_have_count(0)
        # The coordinates are for a screen reader only (in the link's name).
        await expect(small.get_by_test_id("account-map-position")).to_have_text("45.7631, 4.851")
        await expect(small.get_by_test_id("account-map-position")).not_to_be_in_viewport()
        await expect(link).to_have_accessible_name(
            "Map of where Les Halles de Lyon is 45.7631, 4.851 Open in your maps app"
        )
        await expect(app.tid("account-position")).to_have_count(0)
        # A still map: a drag moves nothing.
        before = await box.locator(".leaflet-map-pane").evaluate("(p) => p.style.transform")
        await app.page.mouse.move(180, 300)
        await box.hover()
        await app.page.mouse.down()
        await app.page.mouse.move(100, 250, steps=5)
        await app.page.mouse.up()
        after = await box.locator(".leaflet-map-pane").evaluate("(p) => p.style.transform")
        assert before == after
        await holds(app, "online", artifacts, at=(45.7631, 4.851))

        # An account without a position has no map (and no empty box).
        await app.account.open(nowhere["id"])
        await expect(app.tid("account-map")).to_have_count(0)

        # Offline, at a place never seen: the pin and the address on plain land.
        asked = len(tiles.requests)
        await app.set_offline(True)
        await app.account.open(grenoble["id"])
        box = app.tid("account-map-box")
        await expect(box).to_have_attribute("data-state", "map")
        await expect(box).to_contain_text("4 place Grenette, 38000 Grenoble")
        await expect(box.locator(".account-map-pin")).to_be_visible()
        await expect(box.locator("img.leaflet-tile-loaded")).to_have_count(0)
        assert len(tiles.requests) == asked
        await holds(app, "offline", artifacts)


async def test_the_account_map_in_french(tmp_path: Path, phones: Phones, artifacts: Path) -> None:
    with served(tmp_path, {}) as server:
        server.add_user("alice")
        rest = await Rest.login(server.url, "alice")
        try:
            account = await rest.create(
                "accounts", name="Boulangerie Dupré", street="12 rue de la République",
                postal_code="69002", city="Lyon", lat=45.7622, lng=4.8357,
            )  # fmt: skip
        finally:
            await rest.close()
        app = await phones.signed_in(server.url, "alice", locale="fr-FR", controlled=False)
        await app.account.open(account["id"])
        box = app.tid("account-map-box")
        await expect(box).to_have_attribute("data-state", "map")
        await expect(box).to_have_attribute("aria-label", "Carte : où se trouve Boulangerie Dupré")
        await expect(app.tid("account-map-open")).to_contain_text(
            "Ouvrir dans votre application de cartes"
        )
        await holds(app, "fr", artifacts)
