"""What the bench scripts share: a fresh, migrated database of either engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from server import db
from server.migrate import migrate
from server.settings import parse_database_url
from server.tables import bind_tables

PG_HOST = os.environ.get("FIELDCRM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FIELDCRM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FIELDCRM_TEST_PG_USER", "postgres")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def database(engine: str) -> AsyncIterator[str]:
    """A fresh, migrated database of the engine, configured as this process's; its
    DATABASE_URL; dropped after."""
    with tempfile.TemporaryDirectory(prefix="fieldcrm-bench-") as tmp:
        name = f"fieldcrm_bench_{uuid.uuid4().hex[:10]}"
        if engine == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        else:
            await _pg_admin(f'CREATE DATABASE "{name}"')
            url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        try:
            bind_tables(db.configure(parse_database_url(url)))
            await db.start()
            try:
                await migrate()
                yield url
            finally:
                await db.stop()
        finally:
            if engine == "postgres":
                await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def settle_after_bulk_load() -> None:
    """On PostgreSQL, what autovacuum does a while after a bulk load: statistics, and the
    visibility map that lets index-only scans (the list indexes) skip the table."""
    if db.is_postgres():
        await db.fetch("VACUUM ANALYZE")


class LeanResponse:
    """What a bench needs of an answer: its status, headers and body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content


class LeanClient:
    """One keep-alive HTTP/1.1 connection with as little client-side work as we can write.

    The benches run their clients on the server's two cores; httpx spends about 2 ms of CPU
    per request, as much as the server, so with it the figures measure the client. This one
    sends a request and reads a Content-Length answer, nothing more (no redirects, no
    chunked bodies: fieldcrm's API answers neither)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        host_port = base.removeprefix("http://").rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> LeanResponse:
        kept = self.writer is not None  # a kept-alive connection the server may have closed
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("latin-1") + body)
        try:
            status_line = await self.reader.readuntil(b"\r\n")
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.aclose()
            if kept:
                # The server let an idle keep-alive connection go (on a loaded machine a
                # phone's pause can outlast its timeout): once more on a new one, as a
                # browser does. Safe for a sync: a replayed mid is answered, not applied.
                return await self.request(method, path, body, headers)
            raise
        status = int(status_line.split(b" ", 2)[1])
        answer: dict[str, str] = {}
        for line in raw.decode("latin-1").split("\r\n"):
            if line:
                name, _, value = line.partition(":")
                answer[name.lower()] = value.strip()
        content = await self.reader.readexactly(int(answer.get("content-length", "0")))
        if answer.get("connection", "").lower() == "close":
            await self.aclose()
        return LeanResponse(status, answer, content)

    async def get(self, path: str) -> LeanResponse:
        return await self.request("GET", path)
