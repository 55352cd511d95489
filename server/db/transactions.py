"""Where a statement runs: fetch() and fetch_rows() in the current transaction if there
is one; read_transaction(), write_transaction() and transaction() to start one.

What callers rely on:
- Inside a transaction every statement runs in it, after whatever defer() held back.
- A transaction started inside another is that other one; a write transaction cannot
  start inside a read transaction.
- A write transaction holds the single writer until it commits (with others, see
  group_commit.py); outside a transaction a write on SQLite takes the writer's turn.
- read_transaction() sees one snapshot for all its reads.
- transaction() does not hold up the writer on PostgreSQL (row locks are enough there);
  SQLite has one writer, so there it is a write transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from server.db.context import current_transaction, ready, send_deferred
from server.db.postgres import Postgres
from server.db.setup import driver, is_postgres
from server.db.sql import compile_sql
from server.db.sqlite import SQLite


async def fetch(sql: str, *args: Any, slow: bool = False) -> list[dict[str, Any]]:
    """Run raw SQL with `{}` placeholders inside the current transaction if any, and return
    its rows as dicts. Outside a transaction a write on SQLite takes the writer's turn.

    `slow`: a read whose cost the caller cannot bound (a search, a list at any offset, a
    box of the map): on SQLite it runs in a read thread, not on the event loop; on both
    engines it is stopped with StatementTimeout after SLOW_READ_LIMIT_S."""
    backend = driver()
    transaction = current_transaction.get()
    if transaction is None:
        return await backend.fetch(sql, args, slow)
    if transaction.deferred is not None:
        await send_deferred(transaction)
    if isinstance(backend, Postgres):
        return await backend.run(transaction.connection, sql, args, slow)
    if slow:
        return await backend.run_slow(transaction.connection, sql, args)
    return backend.run(transaction.connection, sql, args)


async def fetch_rows(sql: str, *args: Any) -> Sequence[Sequence[Any]]:
    """As fetch(), inside a transaction, with each row as a sequence of its columns (no
    dict per row: for queries that return many)."""
    transaction = await ready("fetch_rows")
    if is_postgres():
        rows: Sequence[Sequence[Any]] = await transaction.connection.fetch(
            compile_sql(sql, True), *args
        )
        return rows
    found: list[tuple[Any, ...]] = transaction.connection.execute(
        compile_sql(sql, False), args
    ).fetchall()
    return found


async def next_values(sequence: str, count: int) -> list[int]:
    """The next `count` values of a PostgreSQL sequence, in increasing order, taken in the
    current transaction without sending what defer() held back first (values taken are
    never given back, so nothing waits on them; and a write's held-back rows go out in one
    statement even when its seqs run out halfway)."""
    transaction = current_transaction.get()
    assert transaction is not None and is_postgres(), "a sequence, in a PostgreSQL transaction"
    rows = await transaction.connection.fetch(
        "SELECT nextval($1::regclass) AS n FROM generate_series(1, $2::int)", sequence, count
    )
    return sorted(int(row["n"]) for row in rows)


async def raise_sequence(sequence: str, at_least: int) -> None:
    """Move a PostgreSQL sequence on so that its next value is above `at_least` (never
    back), in the current transaction."""
    transaction = current_transaction.get()
    assert transaction is not None and is_postgres(), "a sequence, in a PostgreSQL transaction"
    await transaction.connection.execute(
        "SELECT setval($1::regclass,"
        " GREATEST($2::bigint, COALESCE(pg_sequence_last_value($1::regclass), 0)))",
        sequence,
        at_least,
    )


@asynccontextmanager
async def write_transaction(lane: str | None = None) -> AsyncIterator[None]:
    """A transaction that holds the writer's lock until it commits: of every domain
    (`lane` None), or on PostgreSQL of one lane only (a team's domain: its sync writes,
    server/core/store.py; or a lane of its own for writes that touch no domain's order),
    beside the writers of other lanes. Inside another write transaction it is that one."""
    transaction = current_transaction.get()
    if transaction is not None:
        if not transaction.write:
            raise RuntimeError("a write transaction cannot start inside a read transaction")
        yield
        return
    backend = driver()
    async with backend.groups.member(lane if isinstance(backend, Postgres) else None):
        yield


@asynccontextmanager
async def read_transaction() -> AsyncIterator[None]:
    """A transaction that sees one snapshot for all its reads (inside another transaction,
    that one)."""
    if current_transaction.get() is not None:
        yield
        return
    async with driver().read_transaction():
        yield


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A plain transaction that does not hold up the sync writers on PostgreSQL (row locks
    are enough there); SQLite has one writer, so there it is a write transaction."""
    backend = driver()
    if current_transaction.get() is not None or isinstance(backend, SQLite):
        async with write_transaction():
            yield
        return
    async with backend.transaction():
        yield


async def analyze(tables: Sequence[str]) -> None:
    """Have PostgreSQL gather these tables' statistics again (ANALYZE, in a transaction of
    its own, which holds no write up), for a bulk write that grew them: its planner chooses
    by them, and autovacuum refreshes them a minute later at best (never, where it is off).
    Nothing on SQLite, whose plans here follow the indexes alone."""
    backend = driver()
    if not isinstance(backend, Postgres):
        return
    async with backend.transaction():
        await fetch(f"ANALYZE {', '.join(tables)}")


async def side_fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """One statement on the process's side connection (side.py): outside the pool and any
    transaction, one at a time. Raises SideUnavailable when the connection is not there."""
    return await driver().side.fetch(sql, args)


def listen(channel: str, heard: Callable[[str], None], lost: Callable[[], None]) -> None:
    """Hear `channel`'s notifications on the side connection (PostgreSQL; see side.py), and
    be told when the connection is lost. One listener per channel and database."""
    driver().side.listen(channel, heard, lost)


async def reclaim(tables: Sequence[str]) -> None:
    """Have the engine give back the space that rows deleted from these tables took, so
    that no byte of them stays in the database's files (SPEC section 12): on SQLite a
    checkpoint that empties the write-ahead log (deleted content is zeros already:
    secure_delete), on PostgreSQL a rewrite of each table. Outside any transaction; it
    may hold up writes to these tables while it runs."""
    if current_transaction.get() is not None:
        raise RuntimeError("db.reclaim() runs outside a transaction")
    await driver().reclaim(tables)
