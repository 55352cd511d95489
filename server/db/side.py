"""The side connection: one connection of the process's own, outside the pool and any
transaction, for the one question an idle sync poll asks (server/core/changelog/newest.py),
so that a burst of polls never waits for a pooled connection; on PostgreSQL it also
LISTENs, so the process hears what other processes commit.

What callers rely on:
- side_fetch() runs one statement on it, by itself (autocommit: one snapshot, no BEGIN or
  COMMIT), one at a time; callers coalesce their questions. It opens the connection on
  first use and again after it was lost, at most once a second (RETRY_S); until then, and
  on any failure, it raises SideUnavailable.
- listen(channel, heard, lost): on PostgreSQL, `heard(payload)` is called for each
  notification on `channel` (in commit order), and `lost()` whenever the connection goes
  (closed, dropped, failed): notifications may have been missed since, so whoever keeps
  what they said starts again. A (re)opened connection LISTENs before its first statement
  runs: what that statement reads, and every commit after it, is heard. On SQLite there is
  nothing to hear: listen() only keeps `lost`, called when the connection is closed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from server.db.sql import compile_sql

RETRY_S = 1.0  # a lost side connection is opened again at most this often
STATEMENT_TIMEOUT_S = 2.0  # past this a side statement counts as a lost connection


class SideUnavailable(Exception):
    """The side connection is not there now; the caller takes the ordinary path."""


class Side:
    """The side connection's bookkeeping, the same on both engines."""

    def __init__(self) -> None:
        self._listeners: dict[str, tuple[Callable[[str], None], Callable[[], None]]] = {}
        self._retry_at = 0.0
        self._lock: asyncio.Lock | None = None

    def listen(self, channel: str, heard: Callable[[str], None], lost: Callable[[], None]) -> None:
        self._listeners[channel] = (heard, lost)

    def _lost(self) -> None:
        for _, lost in list(self._listeners.values()):
            lost()

    def _may_open(self) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            raise SideUnavailable("the side connection was lost a moment ago")
        self._retry_at = now + RETRY_S

    def _turn(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock


class PostgresSide(Side):
    def __init__(self, connect: Callable[[], Any]) -> None:
        super().__init__()
        self._connect = connect  # an awaitable factory of a set-up asyncpg connection
        self._conn: Any = None

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        async with self._turn():
            conn = await self._open()
            try:
                rows = await conn.fetch(compile_sql(sql, True), *args, timeout=STATEMENT_TIMEOUT_S)
            except Exception as exc:
                await self.close()
                raise SideUnavailable(f"the side connection failed: {exc}") from exc
            return [dict(r) for r in rows]

    async def _open(self) -> Any:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._may_open()
        try:
            conn = await self._connect()
        except Exception as exc:
            raise SideUnavailable(f"the side connection could not open: {exc}") from exc
        try:
            conn.add_termination_listener(self._terminated)
            for channel, (heard, _) in self._listeners.items():
                await conn.add_listener(channel, _callback(heard))
        except Exception as exc:
            conn.terminate()
            raise SideUnavailable(f"the side connection could not listen: {exc}") from exc
        self._conn = conn
        return conn

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._conn = None
            self._lost()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._lost()
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()


def _callback(heard: Callable[[str], None]) -> Callable[[Any, int, str, str], None]:
    def on_notification(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        heard(payload)

    return on_notification


class SqliteSide(Side):
    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        super().__init__()
        self._connect = connect
        self._conn: sqlite3.Connection | None = None

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        # On the loop thread, as the driver's reads: an indexed read takes microseconds.
        if self._conn is None:
            self._may_open()
            try:
                self._conn = self._connect()
            except sqlite3.Error as exc:
                raise SideUnavailable(f"the side connection could not open: {exc}") from exc
        try:
            cursor = self._conn.execute(compile_sql(sql, False), args)
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            await self.close()
            raise SideUnavailable(f"the side connection failed: {exc}") from exc
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._lost()
            conn.close()
