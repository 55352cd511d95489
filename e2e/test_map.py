"""The map at 360 px (docs/map.md): a basemap offline from the first start, clustered accounts
coloured by their last visit with a legend, Nearby's fresh fix, capped count and a map that
never covers the header or the tab bar; street tiles kept for offline use; a territory pack
kept on the phone in one tap."""

from __future__ import annotations

import asyncio
import math
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from geographiclib.geodesic import Geodesic
from playwright.async_api import expect

from e2e.conftest import Server, start_server
from e2e.map_support import TileServer, png, sync_accounts
from e2e.nearby_pages import NearbyScreen
from e2e.pages import PHONE, Phones, Rest
from e2e.test_nearby import check_layout
from tests.integration.test_maps import write_pack

HERE = {"latitude": 45.7640, "longitude": 4.8357, "accuracy": 10}
CROWD = 150  # accounts in one block of streets, 4 km away: more than Nearby lists (100)

# Records the options of every position the page asks for.
GEO_OPTIONS = """
(() => {
  const asked = (window.__geoOptions = []);
  const original = navigator.geolocation.getCurrentPosition.bind(navigator.geolocation);
  navigator.geolocation.getCurrentPosition = (ok, fail, options) => {
    asked.push(options || {});
    return original(ok, fail, options);
  };
})();
"""

# Whether, with `selector`'s box scrolled across the middle line of the header (or the tab
# bar), what is drawn on that line is the bar.
COVERED = """
async ([selector, bar]) => {
  const edge = document.querySelector(bar).getBoundingClientRect();
  const middle = edge.top + edge.height / 2;
  const before = document.querySelector(selector).getBoundingClientRect();
  window.scrollBy(0, (before.top + before.bottom) / 2 - middle);
  await new Promise((r) => requestAnimationFrame(r));
  const box = document.querySelector(selector).getBoundingClientRect();
  if (!(box.top < middle && middle < box.bottom)) return "could not scroll there";
  const found = document.elementFromPoint(box.left + box.width / 2, middle);
  return Boolean(found && found.closest(bar));
}
"""


def point_at(metres: float, bearing: float) -> tuple[float, float]:
    end = Geodesic.WGS84.Direct(HERE["latitude"], HERE["longitude"], bearing, metres)
    return end["lat2"], end["lon2"]


@contextmanager
def served(tmp: Path, env: dict[str, str]) -> Iterator[Server]:
    server = start_server(tmp, env)
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()


@contextmanager
def served_with_tiles(tmp: Path) -> Iterator[tuple[TileServer, Server]]:
    """fieldcrm with its street tiles from a local tile server (e2e/map_support.py), and
    that server (which tiles were asked for)."""
    with (
        TileServer().running() as tiles,
        served(
            tmp, {"FIELDCRM_TILE_URL": tiles.url, "FIELDCRM_TILE_ATTRIBUTION": "© Test tiles"}
        ) as server,
    ):
        yield tiles, server


async def seed_visits(server: Server) -> dict[str, str]:
    """Three accounts of Alice's 1.2 km from her, one visited yesterday, one 45 days ago and
    one never, and a crowd of never-visited prospects 4 km north."""
    server.add_user("alice")
    rng = random.Random(3)
    crowd = []
    for i in range(CROWD):
        lat, lng = point_at(4_000 + rng.uniform(-150, 150), 20 + rng.uniform(-2, 2))
        crowd.append({"name": f"Prospect {i:03d}", "status": "prospect", "lat": lat, "lng": lng})
    sync_accounts(server, "alice", crowd)
    alice = await Rest.login(server.url, "alice")
    ids = {}
    try:
        now = datetime.now(UTC)
        for name, status, bearing, days in [
            ("Vu hier", "customer", 270, 1),
            ("Vu il y a 45 jours", "inactive", 180, 45),
            ("Jamais vu", "prospect", 90, None),
        ]:
            lat, lng = point_at(1_200, bearing)
            account = await alice.create("accounts", name=name, status=status, lat=lat, lng=lng)
            ids[name] = account["id"]
            if days is not None:
                started = (now - timedelta(days=days)).isoformat()
                await alice.create("visits", account_id=account["id"], started_at=started)
    finally:
        await alice.close()
    return ids


async def test_the_map_offline_from_the_first_start(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    await seed_visits(server)
    app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
    await app.context.add_init_script(GEO_OPTIONS)
    nearby = NearbyScreen(app)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()
    await app.synced()

    # No map was ever opened on this phone: offline, Leaflet, its clusters and the basemap
    # come from what the service worker kept at install.
    await app.set_offline(True)
    await nearby.open()
    await nearby.expect_source("phone")
    await nearby.expect_basemap()
    box = nearby.tid("nearby-map")
    await expect(box).to_have_attribute("data-accounts", str(CROWD + 3))
    await expect(box.locator(".basemap-city").first).to_be_attached()  # Lyon's names

    # The nearest 100 are listed, and the count says there are more.
    count = nearby.tid("nearby-count")
    await expect(count).to_have_attribute("data-capped", "yes")
    await expect(count).to_contain_text("The 100 nearest accounts within 25 km")
    await nearby.scroll_to_the_end()
    await expect(nearby.rows()).to_have_count(100)

    # Coloured by the last visit (30 days), a legend that says so; the crowd is clustered.
    assert await nearby.legend() == ["recent", "due", "never"]
    await expect(nearby.pins("recent")).to_have_count(1)
    await expect(nearby.pins("due")).to_have_count(1)
    await expect(nearby.pins("never")).to_have_count(1)
    clusters = nearby.map_clusters()
    await expect(clusters.first).to_be_visible()
    assert await clusters.count() <= 5
    shown = sum(int(t) for t in await clusters.all_inner_texts())
    assert shown == CROWD
    await expect(box.locator(".map-cluster-due")).to_have_count(await clusters.count())
    await check_layout(app, artifacts, "map")
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        await box.screenshot(path=artifacts / f"screen-map-clusters-{scheme}.png")
    await app.page.emulate_media(color_scheme="light")

    await nearby.colour_by("60")
    await expect(nearby.pins("recent")).to_have_count(2)
    await expect(nearby.pins("never")).to_have_count(1)
    await nearby.colour_by("status")
    assert await nearby.legend() == ["prospect", "customer", "inactive"]
    for status in ("prospect", "customer", "inactive"):
        await expect(nearby.pins(status)).to_have_count(1)

    # A cluster opens on a tap: the map zooms in until its accounts are apart.
    await clusters.first.click()
    await expect(nearby.pins("prospect").nth(3)).to_be_attached()

    # "Update" asks for a fresh fix, as the first position did.
    await nearby.tid("nearby-locate").click()
    await nearby.located()
    asked = await app.page.evaluate("() => window.__geoOptions")
    assert len(asked) >= 2 and all(o.get("maximumAge") == 0 for o in asked), asked

    # The map, its controls and markers stay under the header and the tab bar.
    # (A shorter screen, so that the map, near the top of the page, reaches the tab bar.)
    await app.page.set_viewport_size({"width": PHONE["width"], "height": 500})
    zoom_control = "[data-testid=nearby-map] .leaflet-control-zoom"
    assert await app.page.evaluate(COVERED, [zoom_control, "header"]) is True
    assert await app.page.evaluate(COVERED, ["[data-testid=nearby-map]", "nav.tabs"]) is True
    await app.page.screenshot(path=artifacts / "screen-map-under-the-tab-bar.png")
    assert await app.scroll_width() <= PHONE["width"]


TILE_CACHE = "fieldcrm-tiles-1"
KEPT_TILES = """
async (name) => {
  const cache = await caches.open(name);
  const out = [];
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    // The worker may let it go meanwhile.
    if (response) out.push([request.url, Number(response.headers.get("x-fieldcrm-bytes"))]);
  }
  return out;
}
"""


async def kept_tiles(app: Any, name: str) -> dict[str, int]:
    return dict(await app.page.evaluate(KEPT_TILES, name))


async def loaded_tiles(nearby: NearbyScreen) -> list[str]:
    tiles = nearby.tid("nearby-map").locator("img.leaflet-tile-loaded")
    await expect(tiles.first).to_be_visible()
    return [str(s) for s in await tiles.evaluate_all("(imgs) => imgs.map((i) => i.src)")]


async def test_street_tiles_seen_are_kept_for_offline(
    tmp_path: Path, phones: Phones, artifacts: Path
) -> None:
    with served_with_tiles(tmp_path) as (tiles, server):
        server.add_user("alice")
        alice = await Rest.login(server.url, "alice")
        try:
            for metres, bearing in [(300, 0), (900, 120)]:
                lat, lng = point_at(metres, bearing)
                await alice.create("accounts", name=f"Shop {metres}", lat=lat, lng=lng)
        finally:
            await alice.close()
        app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
        nearby = NearbyScreen(app)
        await app.open()
        await app.login("alice")
        await app.wait_controlled()
        await app.synced()

        await nearby.open()
        await expect(nearby.tid("nearby-map")).to_contain_text("© Test tiles")
        online = await loaded_tiles(nearby)
        assert all(src.startswith("http://127.0.0.1:") for src in online)
        for _ in range(100):  # the worker keeps them just after it answers
            kept = await kept_tiles(app, TILE_CACHE)
            if set(online) <= set(kept):
                break
            await asyncio.sleep(0.1)
        assert set(online) <= set(kept)
        assert all(size > 100 for size in kept.values())
        asked = len(tiles.requests)

        await app.set_offline(True)
        await app.reload()
        await nearby.open()
        offline = await loaded_tiles(nearby)
        assert set(offline) <= set(kept)
        assert len(tiles.requests) == asked  # none of them from the tile server
        await app.page.screenshot(path=artifacts / "screen-map-tiles-offline.png")


TILE_CACHE_BYTES = 64 * 1024 * 1024  # pwa/sw.js's cap
HEAVY_TILE = 2 * 1024 * 1024
# Loads tiles as Leaflet does (CORS images), one after another; how many loaded.
LOAD_TILES = """
async (urls) => {
  let loaded = 0;
  for (const url of urls) {
    const img = new Image();
    img.crossOrigin = "anonymous";
    loaded += await new Promise((resolve) => {
      img.onload = () => resolve(1);
      img.onerror = () => resolve(0);
      img.src = url;
    });
  }
  return loaded;
}
"""


# Makes one kept tile look kept two hours ago, every entry put back in its place.
AGED = """
async ([name, url]) => {
  const cache = await caches.open(name);
  const entries = [];
  for (const request of await cache.keys()) entries.push([request, await cache.match(request)]);
  for (const [request] of entries) await cache.delete(request);
  for (const [request, response] of entries) {
    const headers = new Headers(response.headers);
    if (request.url === url) headers.set("x-fieldcrm-stored-at", String(Date.now() - 2 * 36e5));
    await cache.put(request, new Response(await response.arrayBuffer(), { headers }));
  }
}
"""


async def test_the_tile_cache_stays_under_its_cap(tmp_path: Path, phones: Phones) -> None:
    """40 tiles of 2 MiB each (80 MiB) through the worker: it keeps no more than 64 MiB,
    letting the tiles used longest ago go first, and keeps the last ones."""
    with (
        TileServer(padding=HEAVY_TILE).running() as tiles,
        served(tmp_path, {"FIELDCRM_TILE_URL": tiles.url}) as server,
    ):
        app = await phones.open(server.url)
        await app.open()
        await app.wait_controlled()
        urls = [tiles.url.format(z=12, x=2100 + i, y=1460) for i in range(40)]
        assert await app.page.evaluate(LOAD_TILES, urls) == len(urls)
        previous: dict[str, int] = {}
        for _ in range(100):  # until the worker has kept the last one and let the old go
            kept = await kept_tiles(app, TILE_CACHE)
            if urls[-1] in kept and kept == previous:
                break
            previous = kept
            await asyncio.sleep(0.2)
        size = sum(kept.values())
        assert all(n > HEAVY_TILE for n in kept.values())
        assert size <= TILE_CACHE_BYTES
        assert size >= TILE_CACHE_BYTES * 0.9 - 2 * HEAVY_TILE  # only what it had to let go
        # The oldest went, the newest stay: what is kept is the end of what was loaded.
        assert list(kept) == urls[len(urls) - len(kept) :]
        assert urls[0] not in kept and len(kept) < len(urls)
        assert len(tiles.requests) == len(urls)

        # Least recently used: the oldest kept tile, shown again more than an hour after it
        # was kept, goes to the back of the line, and the next one in line goes instead.
        oldest, next_in_line = list(kept)[:2]
        await app.page.evaluate(AGED, [TILE_CACHE, oldest])
        assert await app.page.evaluate(LOAD_TILES, [oldest]) == 1
        for _ in range(100):
            kept = await kept_tiles(app, TILE_CACHE)
            if list(kept)[-1] == oldest:
                break
            await asyncio.sleep(0.1)
        assert list(kept)[-1] == oldest
        assert len(tiles.requests) == len(urls)  # shown from the cache, not fetched
        room = (TILE_CACHE_BYTES - sum(kept.values())) // HEAVY_TILE
        fresh = [tiles.url.format(z=12, x=2100 + i, y=1461) for i in range(room + 2)]
        assert await app.page.evaluate(LOAD_TILES, fresh) == len(fresh)
        for _ in range(100):
            kept = await kept_tiles(app, TILE_CACHE)
            if fresh[-1] in kept:
                break
            await asyncio.sleep(0.1)
        assert oldest in kept and next_in_line not in kept  # tiles were let go: not it
        assert sum(kept.values()) <= TILE_CACHE_BYTES


PACK_BOUNDS = (4.75, 45.70, 4.92, 45.83)  # west, south, east, north: central Lyon
PACK_ZOOMS = (11, 14)


def pack_tiles() -> dict[tuple[int, int, int], bytes]:
    west, south, east, north = PACK_BOUNDS
    tiles = {}
    for z in range(PACK_ZOOMS[0], PACK_ZOOMS[1] + 1):
        n = 2**z

        def tile(lat: float, lng: float, n: int = n) -> tuple[int, int]:
            rad = math.radians(lat)
            x = int((lng + 180) / 360 * n)
            y = int((1 - math.log(math.tan(rad) + 1 / math.cos(rad)) / math.pi) / 2 * n)
            return x, y

        (x0, y0), (x1, y1) = tile(north, west), tile(south, east)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tiles[(z, x, y)] = png((200, 180 + z * 5, 120))
    return tiles


async def test_a_territory_pack_is_kept_on_the_phone(
    tmp_path: Path, phones: Phones, artifacts: Path
) -> None:
    tiles = pack_tiles()
    pack = write_pack(tmp_path / "lyon.mbtiles", tiles, bounds=PACK_BOUNDS, zooms=PACK_ZOOMS)
    with served(tmp_path, {"FIELDCRM_TILE_PACK": str(pack)}) as server:
        server.add_user("alice")
        alice = await Rest.login(server.url, "alice")
        try:
            lat, lng = point_at(500, 45)
            await alice.create("accounts", name="Shop", lat=lat, lng=lng)
        finally:
            await alice.close()
        app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
        nearby = NearbyScreen(app)
        await app.open()
        await app.login("alice")
        await app.wait_controlled()
        await app.synced()

        await app.tid("nav-settings").click()
        progress = app.tid("territory-progress")
        await expect(progress).to_contain_text(f"{len(tiles)} tiles")
        await app.tid("territory-keep").click()
        await expect(progress).to_have_attribute("data-state", "done", timeout=30_000)
        await expect(progress).to_contain_text(f"{len(tiles)} tiles of the territory map")
        await app.page.screenshot(path=artifacts / "screen-me-territory.png", full_page=True)

        await app.set_offline(True)
        await app.reload()
        await nearby.open()
        drawn = nearby.tid("nearby-map").locator('img.leaflet-tile-loaded[src^="blob:"]')
        await expect(drawn.first).to_be_visible()
        await app.page.screenshot(path=artifacts / "screen-map-territory-offline.png")
