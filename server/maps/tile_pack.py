"""A territory pack: raster tiles in an MBTiles file (an SQLite database), served one by one
at /api/tiles/{z}/{x}/{y} with the standard library's sqlite3, so the app needs no reader of
its own (docs/map.md, "A territory pack").

MBTiles 1.3: a `metadata` table of (name, value) and a `tiles` table keyed by
(zoom_level, tile_column, tile_row) with rows counted from the south (TMS), where the web's
XYZ scheme counts them from the north.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from server.maps.schemas import TilePackInfo
from server.settings import ConfigError

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
TILE_URL = "/api/tiles/{z}/{x}/{y}"
MAX_ZOOM = 24


class TilePack:
    """One MBTiles file, opened read-only. Reads are indexed lookups of a few microseconds,
    made on the event loop's thread like the app's other indexed reads; the lock only keeps
    a stray second thread from sharing the connection mid-statement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            meta = dict(self._db.execute("SELECT name, value FROM metadata").fetchall())
            count, size, low, high = self._db.execute(
                "SELECT count(*), coalesce(sum(length(tile_data)), 0), min(zoom_level),"
                " max(zoom_level) FROM tiles"
            ).fetchone()
        except sqlite3.Error as exc:
            raise ConfigError(f"FIELDCRM_TILE_PACK: {path} is not an MBTiles file: {exc}") from None
        fmt = str(meta.get("format") or "png").lower()
        if fmt not in MEDIA_TYPES:
            raise ConfigError(
                f"FIELDCRM_TILE_PACK: {path} holds {fmt!r} tiles; give raster ones"
                " (png, jpg or webp): the app draws no vector tiles"
            )
        self.media_type = MEDIA_TYPES[fmt]
        self._lock = threading.Lock()
        stat = path.stat()
        self.info = TilePackInfo(
            url=TILE_URL,
            version=hashlib.sha256(f"{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:12],
            name=str(meta.get("name") or path.stem)[:200],
            attribution=str(meta.get("attribution") or "")[:500],
            bounds=_bounds(meta.get("bounds")),
            min_zoom=_zoom(meta.get("minzoom"), low),
            max_zoom=_zoom(meta.get("maxzoom"), high),
            tiles=int(count),
            bytes=int(size),
        )

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at z/x/y (XYZ, rows from the north), or None where the pack has none."""
        with self._lock:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ?"
                " AND tile_row = ?",
                (z, x, (1 << z) - 1 - y),
            ).fetchone()
        return bytes(row[0]) if row else None

    def tiles(self) -> list[tuple[int, int, int]]:
        """Every tile the pack holds, as XYZ (z, x, y), by zoom then column then row."""
        with self._lock:
            rows = self._db.execute(
                "SELECT zoom_level, tile_column, tile_row FROM tiles"
                " ORDER BY zoom_level, tile_column, tile_row DESC"
            ).fetchall()
        return [(z, x, (1 << z) - 1 - row) for z, x, row in rows]

    def close(self) -> None:
        self._db.close()


def _bounds(value: object) -> list[float]:
    try:
        west, south, east, north = (float(v) for v in str(value).split(","))
    except ValueError:
        return []
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        return []
    return [west, south, east, north]


def _zoom(value: object, fallback: int | None) -> int:
    try:
        zoom = int(str(value))
    except ValueError:
        zoom = fallback or 0
    return max(0, min(MAX_ZOOM, zoom))


_opened: dict[Path, TilePack] = {}
_opening = threading.Lock()


def open_pack(path: Path | None) -> TilePack | None:
    """The pack at `path`, opened once per process (None: no pack is set up)."""
    if path is None:
        return None
    with _opening:
        pack = _opened.get(path)
        if pack is None:
            pack = _opened[path] = TilePack(path)
        return pack
