"""The map's rules: the settings the app gets, the offline basemap's document, and the tiles
of the territory pack."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from dataclasses import dataclass

import msgspec

from geo.basemap import basemap
from server.errors import ApiError
from server.maps.schemas import ClientConfig, TileList
from server.maps.tile_pack import MAX_ZOOM, open_pack
from server.settings import Settings

OSM_ATTRIBUTION = "© OpenStreetMap contributors"


def client_config(settings: Settings) -> ClientConfig:
    """The street tiles (none, the default or FIELDCRM_TILE_URL) and the territory pack."""
    pack = open_pack(settings.tile_pack)
    return ClientConfig(
        tile_url=settings.tile_url,
        tile_attribution=tile_attribution(settings),
        tile_pack=pack.info if pack else None,
    )


def tile_attribution(settings: Settings) -> str:
    """FIELDCRM_TILE_ATTRIBUTION, else OpenStreetMap's credit for its own tile servers."""
    if not settings.tile_url:
        return ""
    if settings.tile_attribution:
        return settings.tile_attribution
    return OSM_ATTRIBUTION if "openstreetmap" in settings.tile_url else ""


def parse_tile(z: str, x: str, y: str) -> tuple[int, int, int]:
    """z/x/y as whole numbers of a tile that exists on the web's grid, else a 400."""
    whole = "A tile is /api/tiles/{z}/{x}/{y} in whole numbers."
    try:
        zoom, column, row = int(z), int(x), int(y)
    except ValueError:
        raise ApiError(400, "malformed", whole) from None
    if not 0 <= zoom <= MAX_ZOOM:
        raise ApiError(400, "malformed", f"A tile's zoom is from 0 to {MAX_ZOOM}.")
    if not (0 <= column < 1 << zoom and 0 <= row < 1 << zoom):
        raise ApiError(400, "malformed", f"At zoom {zoom} x and y are from 0 to {(1 << zoom) - 1}.")
    return zoom, column, row


def territory_tile(settings: Settings, z: int, x: int, y: int) -> tuple[bytes, str]:
    """The pack's tile and its media type; 404 when there is no pack or no such tile."""
    pack = open_pack(settings.tile_pack)
    if pack is None:
        raise ApiError(404, "not_found", "No territory pack is set up on this server.")
    tile = pack.tile(z, x, y)
    if tile is None:
        raise ApiError(404, "not_found", "The territory pack has no tile there.")
    return tile, pack.media_type


def territory_tiles(settings: Settings) -> TileList:
    """Every tile of the pack (none without a pack: a phone then has nothing to keep)."""
    pack = open_pack(settings.tile_pack)
    return TileList(tiles=pack.tiles() if pack else [])


@dataclass(frozen=True)
class Document:
    """A static JSON document, built once: its bytes, gzipped, and its ETag."""

    raw: bytes
    gzipped: bytes
    etag: str


_world: Document | None = None
_building = asyncio.Lock()


async def world_basemap() -> Document:
    """The offline basemap (geo.basemap), built on first use in a thread (half a second of
    reading packages' files) and kept; every later call answers at once."""
    global _world
    if _world is None:
        async with _building:
            if _world is None:
                _world = await asyncio.to_thread(_build_world)
    return _world


def _build_world() -> Document:
    raw = msgspec.json.encode(basemap())
    return Document(
        raw=raw,
        gzipped=gzip.compress(raw, compresslevel=9, mtime=0),
        etag=f'"{hashlib.sha256(raw).hexdigest()[:16]}"',
    )
