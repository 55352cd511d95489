"""The map's settings, the territory pack's checks and the offline basemap's data, without a
server (tests/integration/test_maps.py serves them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from geo.basemap import basemap, cities, country_features
from server.errors import ApiError
from server.maps import services
from server.maps.tile_pack import TilePack
from server.settings import (
    DEFAULT_TILE_ATTRIBUTION,
    DEFAULT_TILE_URL,
    ConfigError,
    Settings,
    load_settings,
    parse_database_url,
)
from tests.integration.test_maps import write_pack

DATABASE = parse_database_url("sqlite:///unused.sqlite3")


def test_the_default_tiles_are_not_openstreetmaps_and_need_no_key() -> None:
    settings = load_settings({})
    assert settings.tile_url == DEFAULT_TILE_URL
    assert "openstreetmap.org" not in settings.tile_url
    assert all(part in settings.tile_url for part in ("{z}", "{x}", "{y}"))
    assert services.tile_attribution(settings) == DEFAULT_TILE_ATTRIBUTION
    assert settings.tile_pack is None


@pytest.mark.parametrize("value", ["", "none", " None ", "off"])
def test_tiles_can_be_turned_off(value: str) -> None:
    settings = load_settings({"FIELDCRM_TILE_URL": value})
    assert settings.tile_url == ""
    assert msgspec.json.encode(services.client_config(settings)) == b"{}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tiles.example/{z}/{x}/{y}.png", "https://"),
        ("ftp://tiles.example/{z}/{x}/{y}.png", "https://"),
        ("javascript:alert(1)//{z}{x}{y}", "https://"),
        ("https://tiles.example/{z}/{x}.png", "lacks {y}"),
        ("https://tiles.example/tile.png", "lacks {z}, {x}, {y}"),
    ],
)
def test_a_bad_tile_url_is_a_config_error(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_TILE_URL") as raised:
        load_settings({"FIELDCRM_TILE_URL": value})
    assert message in str(raised.value)


def test_a_tile_pack_must_be_a_raster_mbtiles_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_TILE_PACK"):
        load_settings({"FIELDCRM_TILE_PACK": str(tmp_path / "missing.mbtiles")})
    not_mbtiles = tmp_path / "notes.mbtiles"
    sqlite3.connect(not_mbtiles).execute("CREATE TABLE notes (body TEXT)").connection.close()
    with pytest.raises(ConfigError, match="not an MBTiles file"):
        TilePack(not_mbtiles)
    text = tmp_path / "text.mbtiles"
    text.write_text("hello")
    with pytest.raises(ConfigError, match="not an MBTiles file"):
        TilePack(text)
    vector = write_pack(tmp_path / "vector.mbtiles", {(0, 0, 0): b"pbf"}, fmt="pbf")
    with pytest.raises(ConfigError, match="raster"):
        TilePack(vector)
    pack = write_pack(tmp_path / "ok.mbtiles", {(0, 0, 0): b"png"})
    assert load_settings({"FIELDCRM_TILE_PACK": str(pack)}).tile_pack == pack


def test_without_a_pack_a_tile_is_a_404_and_the_list_empty() -> None:
    with pytest.raises(ApiError) as raised:
        services.territory_tile(Settings(database=DATABASE), 0, 0, 0)
    assert raised.value.status == 404
    assert services.territory_tiles(Settings(database=DATABASE)).tiles == []


def test_country_outlines_are_closed_rounded_rings() -> None:
    features = list(country_features())
    assert len(features) > 150
    for feature in features:
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        )
        for rings in polygons:
            for ring in rings:
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(round(v, 2) == v for point in ring for v in point)
    france = next(f for f in features if f["properties"]["name"] == "France")
    assert france["properties"]["iso"] == "FR"


def test_cities_are_the_biggest_first_and_never_below_the_list_read() -> None:
    found = cities(100_000)
    assert found[0][3] > 10_000_000
    assert all(c[3] >= 100_000 for c in found)
    assert {c[0] for c in found[:300]} >= {"Paris", "Tokyo", "London"}
    with pytest.raises(ValueError):
        cities(1000)
    assert set(basemap(1_000_000)) == {"type", "features", "cities"}
