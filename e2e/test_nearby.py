"""The Nearby screen with a mocked position: online the server's nearest accounts in order,
offline the phone's own (approximate) ranking of the same accounts, a map either way, and a
prospect captured offline that reaches the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic
from playwright.async_api import expect

from e2e.conftest import Server
from e2e.nearby_pages import NearbyScreen
from e2e.pages import PHONE, Phones, Rest

HERE = {"latitude": 45.7640, "longitude": 4.8357, "accuracy": 10}
# (name, status, metres away, bearing): the nearest first.
AROUND = [
    ("Boulangerie du Coin", "prospect", 150, 0),
    ("Fromagerie Lafayette", "customer", 600, 90),
    ("Cave des Canuts", "prospect", 2_500, 200),
    ("Brasserie de Vaise", "inactive", 9_000, 320),
]
FAR = ("Auberge de Vienne", "prospect", 30_000, 170)  # outside the 25 km the screen starts with


def point_at(metres: float, bearing: float) -> tuple[float, float]:
    end = Geodesic.WGS84.Direct(HERE["latitude"], HERE["longitude"], bearing, metres)
    return end["lat2"], end["lon2"]


async def seed(server: Server) -> dict[str, str]:
    server.add_user("alice", team="north")
    server.add_user("bob", team="south")
    alice = await Rest.login(server.url, "alice")
    bob = await Rest.login(server.url, "bob")
    ids = {}
    try:
        for name, status, metres, bearing in [*AROUND, FAR]:
            lat, lng = point_at(metres, bearing)
            ids[name] = (
                await alice.create("accounts", name=name, status=status, lat=lat, lng=lng)
            )["id"]
        # An address the server's geocoder cannot place: it stays without a position.
        await alice.create("accounts", name="No position yet", street="12 rue Inconnue")
        lat, lng = point_at(50, 45)
        await bob.create("accounts", name="Another team's shop", lat=lat, lng=lng)
    finally:
        await alice.close()
        await bob.close()
    return ids


async def check_layout(app: Any, artifacts: Path, name: str) -> None:
    width = await app.scroll_width()
    assert width <= PHONE["width"], f"{name}: the page is {width} px wide"
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        await app.page.screenshot(path=artifacts / f"screen-{name}-{scheme}.png", full_page=True)
        low = await app.low_contrast()
        assert not low, f"{name} ({scheme}): text below WCAG AA contrast: {low}"
    await app.page.emulate_media(color_scheme="light")


async def test_nearby_online_then_offline(server: Server, phones: Phones, artifacts: Path) -> None:
    ids = await seed(server)
    app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
    nearby = NearbyScreen(app)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()
    await app.synced()

    # Online: the server's geodesic ranking, the other team's shop and the far one left out.
    await nearby.open()
    await nearby.expect_source("server")
    expected = [name for name, *_ in AROUND]
    await expect(nearby.rows()).to_have_count(len(expected))
    assert await nearby.names() == expected
    for (name, _, metres, _), shown in zip(AROUND, await nearby.distances(), strict=True):
        assert abs(shown - metres) <= 1, name
    # Every account of Alice's with a position is on the map (the far one too, out of view).
    await expect(nearby.tid("nearby-map")).to_have_attribute("data-accounts", str(len(AROUND) + 1))
    await nearby.expect_basemap()
    first = nearby.row(ids[AROUND[0][0]])
    visit_href = await first.get_by_test_id("nearby-log-visit").get_attribute("href")
    assert visit_href == f"#/visit/new?account={ids[AROUND[0][0]]}"
    directions = await first.get_by_test_id("nearby-directions").get_attribute("href")
    assert directions and directions.startswith("geo:45.76")
    await check_layout(app, artifacts, "nearby")

    # Back on Nearby from another tab: the same map (kept across visits), its accounts and
    # basemap on it again.
    await app.tid("nav-today").click()
    await app.expect_screen("today")
    await nearby.open()
    await expect(nearby.rows()).to_have_count(len(expected))
    box = nearby.tid("nearby-map")
    await expect(box).to_have_attribute("data-accounts", str(len(AROUND) + 1))
    await expect(box).to_have_count(1)
    await nearby.expect_basemap()

    await nearby.filter_status("customer")
    await expect(nearby.rows()).to_have_count(1)
    assert await nearby.names() == ["Fromagerie Lafayette"]
    await nearby.filter_status("")

    # Offline: the same accounts from the phone's own copy, measured on the phone.
    await app.set_offline(True)
    await app.reload()
    await nearby.open()
    await nearby.expect_source("phone")
    await expect(nearby.tid("nearby-source")).to_contain_text("approximate")
    await expect(nearby.rows()).to_have_count(len(expected))
    assert await nearby.names() == expected
    for (name, _, metres, _), shown in zip(AROUND, await nearby.distances(), strict=True):
        assert abs(shown - metres) <= metres * 0.006 + 1, name
    # Leaflet, its clusters and the basemap, from the service worker's cache.
    await expect(nearby.tid("nearby-map")).to_have_attribute("data-accounts", str(len(AROUND) + 1))
    await nearby.expect_basemap()

    # A prospect captured here, offline: on the list at once, on the server once synced.
    await nearby.capture("Épicerie Nouvelle")
    await expect(nearby.rows()).to_have_count(len(expected) + 1)
    assert (await nearby.names())[0] == "Épicerie Nouvelle"
    await app.expect_pending(1)
    await app.set_offline(False)
    await app.synced()

    rest = await Rest.login(server.url, "alice")
    try:
        [captured] = [a for a in await rest.list("accounts") if a["name"] == "Épicerie Nouvelle"]
    finally:
        await rest.close()
    assert captured["status"] == "prospect"
    away = geodesic((HERE["latitude"], HERE["longitude"]), (captured["lat"], captured["lng"])).m
    assert away < 1.0
