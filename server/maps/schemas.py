"""The wire types of the app's map settings."""

from __future__ import annotations

import msgspec


class TilePackInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A territory's street tiles kept by the server (FIELDCRM_TILE_PACK), which phones
    fetch from `url` and keep for offline use (docs/map.md)."""

    url: str  # a Leaflet URL template under /api/tiles/ (sent with the bearer token)
    version: str  # changes when the file does: phones drop the tiles they kept of another
    name: str = ""
    attribution: str = ""
    bounds: list[float] = msgspec.field(default_factory=list)  # [west, south, east, north]
    min_zoom: int = 0
    max_zoom: int = 0
    tiles: int = 0  # how many tiles the pack holds
    bytes: int = 0  # their size in all


class TileList(msgspec.Struct, kw_only=True):
    """The territory pack's tiles, for a phone that keeps them all."""

    tiles: list[tuple[int, int, int]]  # [z, x, y], XYZ numbering


class ClientConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the app needs from the server's configuration to draw its map."""

    tile_url: str = ""  # a Leaflet URL template; empty: no street tiles
    tile_attribution: str = ""
    tile_pack: TilePackInfo | None = None  # a territory's tiles for offline use, if any
