"""The database engine, its transactions and the lifecycle of its connection pool.

One engine per process, chosen by DATABASE_URL. Writers are serialised (an asyncio lock
plus BEGIN IMMEDIATE on SQLite, a transaction-level advisory lock on PostgreSQL) so that
sequence numbers handed out inside a write transaction are in commit order.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from server.settings import DatabaseConfig

WRITE_LOCK_KEY = 7_346_114_019  # pg_advisory_xact_lock key for "the sync writer"

_engine: Engine[Any] | None = None
# One writer lock per event loop (an asyncio.Lock is bound to the loop it first waits in;
# tests run one loop per test).
_sqlite_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_writer() -> asyncio.Lock:
    return _sqlite_writers.setdefault(asyncio.get_running_loop(), asyncio.Lock())


def make_engine(config: DatabaseConfig) -> Engine[Any]:
    if config.is_postgres:
        conf: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "database": config.database,
        }
        if config.password:
            conf["password"] = config.password
        return PostgresEngine(config=conf)
    # timeout: how long a connection waits on SQLite's lock before "database is locked".
    return SQLiteEngine(path=config.path, timeout=30)


def configure(config: DatabaseConfig) -> Engine[Any]:
    """Make the process's engine and point every Piccolo table at it."""
    global _engine
    _engine = make_engine(config)
    from server.tables import ALL_TABLES

    for table in ALL_TABLES:
        table._meta._db = _engine
    return _engine


def engine() -> Engine[Any]:
    if _engine is None:
        raise RuntimeError("server.db.configure() has not been called")
    return _engine


def is_postgres() -> bool:
    return isinstance(engine(), PostgresEngine)


async def start() -> None:
    """Open the pool (PostgreSQL) or set the journal mode (SQLite)."""
    eng = engine()
    if isinstance(eng, PostgresEngine):
        await eng.start_connection_pool(min_size=2, max_size=20)
    else:
        # WAL lets readers run beside the one writer; synchronous=FULL (SQLite's default)
        # syncs the log on every commit, so an acknowledged write survives a power cut.
        assert isinstance(eng, SQLiteEngine)
        await eng._run_in_new_connection("PRAGMA journal_mode=WAL")


async def stop() -> None:
    eng = engine()
    if isinstance(eng, PostgresEngine):
        await eng.close_connection_pool()


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run raw SQL with `{}` placeholders (Piccolo's) inside the current transaction if any."""
    from piccolo.querystring import QueryString

    rows = await engine().run_querystring(QueryString(sql, *args))
    # asyncpg answers Records, aiosqlite dicts: hand out dicts on both.
    return [r if isinstance(r, dict) else dict(r) for r in rows]


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """A transaction that holds the single writer's lock until it commits."""
    eng = engine()
    if isinstance(eng, PostgresEngine):
        async with eng.transaction():
            await fetch("SELECT pg_advisory_xact_lock({})", WRITE_LOCK_KEY)
            yield
    else:
        assert isinstance(eng, SQLiteEngine)
        async with _sqlite_writer():
            async with eng.transaction(transaction_type=TransactionType.immediate):
                yield


@asynccontextmanager
async def read_transaction() -> AsyncIterator[None]:
    """A transaction that sees one snapshot for all its reads."""
    eng = engine()
    if isinstance(eng, PostgresEngine):
        async with eng.transaction():
            await fetch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield
    else:
        assert isinstance(eng, SQLiteEngine)
        async with eng.transaction(transaction_type=TransactionType.deferred):
            yield
