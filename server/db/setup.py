"""The process's database: configure() chooses it, start() opens it, stop() closes it.

One database per process, described by a DatabaseConfig (from DATABASE_URL). What callers
rely on:
- configure() makes the driver (sqlite.SQLite or postgres.Postgres; driver() gives it to
  the package's other modules) and returns Piccolo's engine for the same database. It
  points no Piccolo table at that engine (this package knows no table): whoever
  configures does that, with server.tables.bind_tables().
- configure() may run again (the tests do, once per test). It first calls every hook in
  ON_CONFIGURE: modules that keep what one database held (caches of rows, its epoch)
  append a function that drops it.
- Choosing SQLite sets sqlite3's process-wide converters (sqlite.use_our_converters()),
  the package's one effect outside itself. Importing it changes nothing.
- What reaches the database raises RuntimeError before configure(), and on PostgreSQL
  before start().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from server.db.postgres import Postgres
from server.db.replica import forget_replica, start_replica, stop_replica
from server.db.sqlite import SQLITE_BUSY_TIMEOUT_S, SQLite, use_our_converters
from server.settings import DatabaseConfig

# Caches of another module's to drop on configure(); the replica goes with its primary.
ON_CONFIGURE: list[Callable[[], None]] = [forget_replica]
_engine: Engine[Any] | None = None
_driver: SQLite | Postgres | None = None


def make_engine(config: DatabaseConfig) -> Engine[Any]:
    """The Piccolo engine for `config` (migrations and the table definitions use it)."""
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
    return SQLiteEngine(path=config.path, timeout=SQLITE_BUSY_TIMEOUT_S)


def configure(config: DatabaseConfig) -> Engine[Any]:
    """Choose the process's database; return its Piccolo engine. No table is pointed at
    it here: the caller does that (server.tables.bind_tables)."""
    global _engine, _driver
    for hook in ON_CONFIGURE:
        hook()
    _engine = make_engine(config)
    if config.is_postgres:
        _driver = Postgres(config)
    else:
        use_our_converters()  # the one effect outside this package: see there
        _driver = SQLite(config.path)
    return _engine


def engine() -> Engine[Any]:
    if _engine is None:
        raise RuntimeError("server.db.configure() has not been called")
    return _engine


def driver() -> SQLite | Postgres:
    """The driver configure() chose."""
    if _driver is None:
        raise RuntimeError("server.db.configure() has not been called")
    return _driver


def is_postgres() -> bool:
    return isinstance(driver(), Postgres)


async def start() -> None:
    """Open the pool (PostgreSQL) or set the journal mode (SQLite), and the replica's pool
    if there is one (server/db/replica.py)."""
    await driver().start()
    await start_replica()


async def stop() -> None:
    await stop_replica()
    await driver().stop()
