"""What the map's journeys need besides the app (e2e/test_map.py, bench/map.py): accounts in
bulk through one sync request, PNG tiles, and a tile server on the loopback with CORS, as
real tile services answer."""

from __future__ import annotations

import http.server
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from e2e.conftest import PASSWORD, Server
from sync.protocol import MAX_MUTATIONS

BATCH = MAX_MUTATIONS  # a sync request's most


def sync_accounts(server: Server, username: str, accounts: list[dict[str, Any]]) -> list[str]:
    """Create `accounts` (their fields) as `username` through POST /api/sync/v1, a few
    thousand per request; their ids, in order."""
    return sync_records(server, username, "accounts", accounts)


def sync_records(
    server: Server, username: str, table: str, records: list[dict[str, Any]]
) -> list[str]:
    """Create `records` of `table` (their fields) as `username`, as sync_accounts does."""
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": username, "password": PASSWORD}
    )
    token = login.json()["token"]
    client_id = str(uuid.uuid4())
    hlc_ms = int(time.time() * 1000)
    ids = [str(uuid.uuid4()) for _ in records]
    for start in range(0, len(records), BATCH):
        mutations = [
            {
                "mid": i + 1,
                "table": table,
                "id": ids[i],
                "op": "upsert",
                "fields": records[i],
                "base_seq": None,
                "hlc": [hlc_ms, i],
            }
            for i in range(start, min(start + BATCH, len(records)))
        ]
        response = httpx.post(
            f"{server.url}/api/sync/v1",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "protocol": 1,
                "client_id": client_id,
                "cursor": None,
                "pull_limit": 1,
                "mutations": mutations,
            },
            timeout=120,
        )
        response.raise_for_status()
    return ids


def png(rgb: tuple[int, int, int], size: int = 256, padding: int = 0) -> bytes:
    """A plain PNG of one colour, as a tile; with `padding` bytes more in a private chunk
    that decoders skip (a heavy tile, to fill a cache)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + (chunk(b"fcPd", bytes(padding)) if padding else b"")
        + chunk(b"IEND", b"")
    )


class TileServer:
    """A tile service on 127.0.0.1: /{z}/{x}/{y}.png, each tile a colour of its own, with
    `Access-Control-Allow-Origin: *`. `requests` lists the paths asked for; `padding` makes
    each tile that many bytes heavier."""

    def __init__(self, padding: int = 0) -> None:
        self.requests: list[str] = []
        tiles = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                tiles.requests.append(self.path)
                parts = self.path.removesuffix(".png").strip("/").split("/")
                try:
                    z, x, y = (int(p) for p in parts)
                except ValueError:
                    self.send_error(404)
                    return
                body = png(((x * 40) % 256, (y * 60) % 256, (z * 20) % 256), padding=padding)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Cache-Control", "max-age=86400")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{{z}}/{{x}}/{{y}}.png"

    @contextmanager
    def running(self) -> Iterator[TileServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
