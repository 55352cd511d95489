"""The map's server side on both engines (docs/map.md): GET /api/config (street tiles and the
territory pack), GET /api/tiles/{z}/{x}/{y} from an MBTiles file, and the offline basemap
at /basemap/world.json."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from tests.conftest import Database
from tests.factories import login_as

TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
# A few tiles of Lyon at zooms 10 and 12 (XYZ: rows counted from the north), each with
# bytes of its own so that a mix-up of rows shows.
PACK_TILES = {(10, 527, 364): b"\x89PNG lyon 10", (12, 2110, 1459): b"\x89PNG lyon 12"}


def write_pack(
    path: Path,
    tiles: dict[tuple[int, int, int], bytes],
    fmt: str = "png",
    bounds: tuple[float, float, float, float] = (4.7, 45.6, 5.0, 45.9),
    zooms: tuple[int, int] = (10, 12),
) -> Path:
    """An MBTiles 1.3 file as tools such as GDAL or tilemaker write it (TMS rows)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute(
        "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,"
        " tile_data BLOB)"
    )
    db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
    db.executemany(
        "INSERT INTO metadata VALUES (?, ?)",
        [
            ("name", "Lyon"),
            ("format", fmt),
            ("bounds", ",".join(str(v) for v in bounds)),
            ("minzoom", str(zooms[0])),
            ("maxzoom", str(zooms[1])),
            ("attribution", "© OpenStreetMap contributors"),
        ],
    )
    db.executemany(
        "INSERT INTO tiles VALUES (?, ?, ?, ?)",
        [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in tiles.items()],
    )
    db.commit()
    db.close()
    return path


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """Tiles from a tile server, and a territory pack of Lyon."""
    pack = write_pack(tmp_path / "lyon.mbtiles", PACK_TILES)
    return Settings(database=database.config, tile_url=TILES, tile_pack=pack)


async def test_config_names_the_tile_server_and_the_pack(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    response = await client.get("/api/config", headers=rep.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    pack = body.pop("tile_pack")
    assert body == {"tile_url": TILES, "tile_attribution": "© OpenStreetMap contributors"}
    assert pack.pop("version")
    assert pack == {
        "url": "/api/tiles/{z}/{x}/{y}",
        "name": "Lyon",
        "attribution": "© OpenStreetMap contributors",
        "bounds": [4.7, 45.6, 5.0, 45.9],
        "min_zoom": 10,
        "max_zoom": 12,
        "tiles": 2,
        "bytes": sum(len(data) for data in PACK_TILES.values()),
    }
    # The page shows the tiles and its service worker fetches them, to keep them offline.
    csp = response.headers["content-security-policy"]
    assert "img-src 'self' data: blob: https://tile.openstreetmap.org;" in csp
    assert "connect-src 'self' https://tile.openstreetmap.org;" in csp
    assert (await client.get("/api/config")).status_code == 401


async def test_the_pack_serves_its_tiles_by_xyz(client: Any) -> None:
    rep = await login_as(client, "rep", "south")
    for (z, x, y), data in PACK_TILES.items():
        response = await client.get(f"/api/tiles/{z}/{x}/{y}", headers=rep.headers)
        assert response.status_code == 200, response.text
        assert response.content == data
        assert response.headers["content-type"] == "image/png"
    # Where the pack has no tile: a clear 404, as for a row counted from the wrong end.
    for path in ("/api/tiles/10/527/659", "/api/tiles/11/1054/729", "/api/tiles/0/0/0"):
        response = await client.get(path, headers=rep.headers)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    assert (await client.get("/api/tiles/10/527/364")).status_code == 401
    # The list of them all, for a phone that keeps the pack.
    listed = await client.get("/api/tiles", headers=rep.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"tiles": [list(key) for key in sorted(PACK_TILES)]}
    assert (await client.get("/api/tiles")).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/tiles/a/1/1",
        "/api/tiles/1/1/1.5",
        "/api/tiles/-1/0/0",
        "/api/tiles/25/0/0",
        "/api/tiles/3/8/0",
        "/api/tiles/3/0/-1",
        "/api/tiles/2/0/99999999999999999999999",
    ],
)
async def test_a_tile_off_the_grid_is_a_400(client: Any, path: str) -> None:
    rep = await login_as(client, "rep", "north")
    response = await client.get(path, headers=rep.headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "malformed" and body["detail"]


async def test_the_basemap_is_countries_and_cities_open_and_cached(client: Any) -> None:
    response = await client.get("/basemap/world.json", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "no-cache"
    etag = response.headers["etag"]
    world = response.json()  # httpx has undone the gzip
    assert world["type"] == "FeatureCollection"
    names = {f["properties"]["name"] for f in world["features"]}
    assert {"France", "Brazil", "Japan", "Australia"} <= names
    for feature in world["features"]:
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    lyon = next(c for c in world["cities"] if c[0] == "Lyon")
    assert abs(lyon[1] - 4.85) < 0.05 and abs(lyon[2] - 45.75) < 0.05 and lyon[3] > 400_000
    populations = [c[3] for c in world["cities"]]
    assert populations == sorted(populations, reverse=True)
    assert min(populations) >= 15_000

    again = await client.get("/basemap/world.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    plain = await client.get("/basemap/world.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert json.loads(plain.content) == world
    assert len(gzip.compress(plain.content)) < 700_000  # a phone keeps it from its first start
