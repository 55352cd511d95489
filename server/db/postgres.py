"""PostgreSQL: an asyncpg pool.

Its connections are not reset on release (we keep no session state: no LISTEN, no
session locks or settings; the side connection, side.py, is outside the pool and
LISTENs), take and give UUIDs as strings (as SQLite's are read, see
sqlite.py), and have met every array type the bulk statements use before their first
request. The writers' locks are transaction-level advisory locks, so several server
processes on one database share them: a team's writers hold WRITE_LOCK_KEY shared and
their team's lock, the writers of every domain WRITE_LOCK_KEY exclusive (`lane_locks`);
BEGIN, the locks and the group's first savepoint go in one round trip. Reads in a
read_transaction() see one snapshot (REPEATABLE READ).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from server.db.context import (
    SLOW_READ_LIMIT_S,
    StatementTimeout,
    Transaction,
    current_while,
    send_deferred,
)
from server.db.group_commit import Groups
from server.db.side import PostgresSide
from server.db.sql import compile_sql
from server.settings import DatabaseConfig

log = logging.getLogger("fieldcrm.db")

SIDE_APPLICATION_NAME = "fieldcrm side"  # the side connection, as pg_stat_activity names it
WRITE_LOCK_KEY = 7_346_114_019  # pg_advisory_xact_lock key for "the sync writer"
TEAM_LOCK_CLASS = 734_611  # pg_advisory_xact_lock(class, key): a team's writers' lock


def lane_locks(lane: str | None) -> str:
    """The statement that takes a writer's lane's locks (Postgres.begin_group)."""
    if lane is None:
        return f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
    team_key = zlib.crc32(lane.encode()) - 2**31  # an int4
    return (
        f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK_KEY}),"
        f" pg_advisory_xact_lock({TEAM_LOCK_CLASS}, {team_key})"
    )


# reclaim(): how long it waits for older transactions to end before it gives up.
RECLAIM_WAIT_S = 60.0
# reclaim(): how long a table's rewrite waits in the queue for its lock before it lets the
# writes queued behind it through and asks again (a waiting ACCESS EXCLUSIVE lock holds up
# every later statement on the table, reads too), and how long it keeps asking.
RECLAIM_LOCK_WAIT_MS = 200
RECLAIM_LOCK_PAUSE_S = 0.3
# Whether every transaction that began before the one with id $1 (an xid8, as text) has
# ended (the oldest still running is newer: pg_current_snapshot's xmin), and no other
# session of this database holds a snapshot that began before it.
_HORIZON_PASSED = (
    "SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8 AND NOT EXISTS ("
    " SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL"
    " AND age(backend_xmin) >= age(($1::text::numeric % 4294967296)::text::xid))"
)


# The statistics of these tables ($1, their names) and of their indexes (an expression
# index has its own): dropped before ANALYZE gathers them again, in its transaction. ANALYZE
# of a table left with no rows keeps the statistics it had, an erased value among a
# column's most common ones.
_FORGET_STATISTICS = (
    "DELETE FROM pg_catalog.pg_statistic WHERE starelid IN ("
    " SELECT CAST(t AS regclass) FROM unnest($1::text[]) AS t"
    " UNION SELECT indexrelid FROM pg_catalog.pg_index"
    " WHERE indrelid = ANY($1::text[]::regclass[]))"
)


async def _analyze_afresh(conn: Any, tables: Sequence[str]) -> None:
    """ANALYZE `tables` with their old statistics dropped first, in one transaction (no
    plan is ever made without them). A user who may not write `pg_statistic` (not a
    superuser) gets ANALYZE alone, and a warning."""
    import asyncpg

    analyze = f"ANALYZE {', '.join(tables)}"
    try:
        async with conn.transaction():
            await conn.execute(_FORGET_STATISTICS, list(tables))
            await conn.execute(analyze)
    except asyncpg.exceptions.InsufficientPrivilegeError:
        log.warning(
            "the database user may not write pg_statistic: statistics of a table an erasure"
            " emptied may keep an erased value until it holds rows again (docs/deployment.md)"
        )
        await conn.execute(analyze)


async def _rewrite(conn: Any, table: str, deadline: float) -> None:
    """`VACUUM (FULL) table`, its lock asked for with a lock_timeout of
    RECLAIM_LOCK_WAIT_MS, and again after a pause while it is not had, until `deadline`
    (the loop's time). The connection's lock_timeout is as before after."""
    import asyncpg

    await conn.execute(f"SET lock_timeout = {RECLAIM_LOCK_WAIT_MS}")
    try:
        while True:
            try:
                await conn.execute(f"VACUUM (FULL) {table}")
                return
            except asyncpg.exceptions.LockNotAvailableError:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"{table} stayed in use; the erasure's space is reclaimed later"
                    ) from None
                await asyncio.sleep(RECLAIM_LOCK_PAUSE_S)
    finally:
        await conn.execute("RESET lock_timeout")


# Every column type fieldcrm's tables use, as arrays (insert_rows, update_rows, any_of).
ARRAY_TYPES = (
    "uuid",
    "text",
    "character varying",
    "timestamp with time zone",
    "timestamp without time zone",
    "date",
    "boolean",
    "bigint",
    "integer",
    "double precision",
)


async def _keep_session(connection: Any) -> None:
    """asyncpg's reset on release (a round trip each time) undoes session state; we keep
    none: no LISTEN, no session locks or settings. An open transaction is still rolled
    back by the pool before this is called."""


async def _set_up(connection: Any) -> None:
    """UUIDs in and out as strings, as fieldcrm uses them (and as SQLite's are read).
    Then one statement that names each array type: asyncpg looks up a type it has not met
    with a catalogue query (2 to 7 ms) the first time a statement on that connection uses
    it; this pays it once, when the connection opens, not inside the writer's turn."""
    await connection.set_type_codec(
        "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
    )
    marks = ", ".join(f"${n}::{name}[]" for n, name in enumerate(ARRAY_TYPES, 1))
    await connection.prepare(f"SELECT {marks}")


class Postgres:
    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.pool: Any = None
        self.groups = Groups(self)
        self._column_types: dict[str, dict[str, str]] = {}  # see column_types()
        self.side = PostgresSide(self._side_connection)

    async def start(self) -> None:
        import asyncpg

        # min_size connections are opened (and set up) here, before the first request: a
        # burst of requests finds them ready instead of each waiting for a new one.
        self.pool = await asyncpg.create_pool(
            host=self.config.host,
            port=self.config.port,
            user=self.config.user,
            password=self.config.password,
            database=self.config.database,
            min_size=self.config.pool_min,
            max_size=max(self.config.pool_min, self.config.pool_max),
            reset=_keep_session,
            init=_set_up,
            # Prepared statements leave the cache by age only if given one: each then has
            # a timer, hundreds in all. The cache is bounded by its size anyway.
            max_cached_statement_lifetime=0,
        )

    async def _side_connection(self) -> Any:
        import asyncpg

        conn = await asyncpg.connect(
            host=self.config.host,
            port=self.config.port,
            user=self.config.user,
            password=self.config.password,
            database=self.config.database,
            timeout=5,
            server_settings={"application_name": SIDE_APPLICATION_NAME},
        )
        await _set_up(conn)
        return conn

    async def stop(self) -> None:
        await self.side.close()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def _pool(self) -> Any:
        if self.pool is None:
            raise RuntimeError("server.db.start() has not been called")
        return self.pool

    @staticmethod
    async def run(
        conn: Any, sql: str, args: tuple[Any, ...], slow: bool = False
    ) -> list[dict[str, Any]]:
        """The statement's rows; a slow one is cancelled (StatementTimeout) once it has run
        SLOW_READ_LIMIT_S, so that it does not hold a pooled connection for long."""
        if not slow:
            return [dict(r) for r in await conn.fetch(compile_sql(sql, True), *args)]
        try:
            rows = await conn.fetch(compile_sql(sql, True), *args, timeout=SLOW_READ_LIMIT_S)
        except TimeoutError:
            raise StatementTimeout(
                f"a read ran past {SLOW_READ_LIMIT_S:g} s and was stopped"
            ) from None
        return [dict(r) for r in rows]

    async def fetch(
        self, sql: str, args: tuple[Any, ...], slow: bool = False
    ) -> list[dict[str, Any]]:
        async with self._pool().acquire() as conn:
            return await self.run(conn, sql, args, slow)

    async def column_types(self, connection: Any, table: str) -> dict[str, str]:
        """Each column's type in PostgreSQL's words, read once per table (a database
        configured again gets a new Postgres, and reads them again)."""
        types = self._column_types.get(table)
        if types is None:
            rows = await connection.fetch(
                "SELECT attname, format_type(atttypid, NULL) AS type FROM pg_attribute"
                " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                table,
            )
            types = self._column_types[table] = {r["attname"]: r["type"] for r in rows}
        return types

    @asynccontextmanager
    async def _transaction(self, begin: str, write: bool) -> AsyncIterator[None]:
        async with self._pool().acquire() as conn:
            await conn.execute(begin)
            transaction = Transaction(conn, write=write)
            with current_while(transaction):
                try:
                    yield
                    await send_deferred(transaction)
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")

    def read_transaction(self) -> Any:
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ", write=False)

    def transaction(self) -> Any:
        return self._transaction("BEGIN", write=True)

    # -- the writer's group transactions (see group_commit.py) --

    async def begin_group(self, lane: str | None) -> Any:
        """Lane None: the writer's lock of every domain (WRITE_LOCK_KEY, exclusive). A
        team's lane: WRITE_LOCK_KEY shared (writers of other teams hold it too), then the
        team's own lock (a key of TEAM_LOCK_CLASS; two teams whose keys meet only wait
        for each other). Always in that order, so no two writers wait on each other."""
        conn = await self._pool().acquire()
        try:
            await conn.execute(f"BEGIN; {lane_locks(lane)}; SAVEPOINT member")
        except BaseException:
            await self._pool().release(conn)
            raise
        return conn

    async def end_group(self, conn: Any, commit: bool) -> None:
        try:
            await conn.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            # A connection left in a transaction is reset (rolled back) by the pool.
            await self._pool().release(conn)

    async def reclaim(self, tables: Sequence[str]) -> None:
        """Rewrite these tables (and their indexes and TOAST) whole, outside any
        transaction: VACUUM alone leaves a deleted row's bytes in the free space of its
        pages and a dead index entry's in its index page; a rewrite leaves them in no file.
        The statistics first: dropped and gathered again (ANALYZE, no lock that holds
        writes up); the statistics' table, whose most common values may have held an
        erased value, is rewritten last (skipped with a warning when the user may not
        vacuum it). docs/privacy.md says why not less.

        One table at a time, each in its own transaction (`VACUUM (FULL) t`): a table is
        locked only while it is rewritten (writes to it wait that long, about 0.3 s per
        20,000 rows: docs/performance.md), and its lock is asked for with a short
        lock_timeout, so a long transaction on it never leaves every write queued behind
        the waiting rewrite; it asks again after a pause, up to RECLAIM_WAIT_S in all.

        A rewrite copies the rows some transaction may still see: first it waits, up to
        RECLAIM_WAIT_S, until every transaction that began before now (in any database of
        the server: their ids bound every snapshot) and every snapshot of this database
        taken before now has ended; past either limit it raises, and the caller tries again
        later."""
        if not tables:
            return
        async with self._pool().acquire() as conn:
            # The statistics first, so that the wait below covers the snapshots that could
            # still see their old versions too: a rewrite copies the versions some
            # snapshot may see, and statistics replaced after the wait were kept.
            await _analyze_afresh(conn, tables)
            now = await conn.fetchval("SELECT pg_current_xact_id()::text")
            deadline = asyncio.get_running_loop().time() + RECLAIM_WAIT_S
            while not await conn.fetchval(_HORIZON_PASSED, now):
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        "transactions older than the erasure still run; its space is"
                        " reclaimed later"
                    )
                await asyncio.sleep(0.2)
            deadline = asyncio.get_running_loop().time() + RECLAIM_WAIT_S
            for table in tables:
                await _rewrite(conn, table, deadline)
            await _rewrite(conn, "pg_catalog.pg_statistic", deadline)

    @staticmethod
    async def statements(conn: Any, *sql: str) -> None:
        await conn.execute("; ".join(sql))
