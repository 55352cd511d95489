"""Many rows in one statement: insert_rows(), update_rows() and any_of().

What callers rely on: a statement's text does not depend on how many rows or values it
carries (on SQLite, on a few powers of two: padded(), and the multi-row statements of
sqlite.SQLite.insert_rows/update_rows), so each is parsed and planned once per connection
and then reused. On PostgreSQL the rows go as one array per column, through unnest, cast
to each column's type (postgres.Postgres.column_types); on SQLite as multi-row statements
of up to 256 rows. insert_rows() and update_rows() need a write transaction and send what
defer() held back first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from server.db.context import ready
from server.db.postgres import Postgres
from server.db.setup import driver
from server.db.sqlite import SQLite

T = TypeVar("T")


async def insert_rows(
    table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, upsert: str = ""
) -> None:
    """Insert `rows` (values in the order of `columns`) in the current write transaction.
    On PostgreSQL in one statement whose text does not depend on how many rows there are
    (each column as one array, through unnest), so it is parsed and planned once per
    connection; on SQLite in multi-row statements, in order. `upsert`: an
    `ON CONFLICT (...) DO UPDATE SET ...` clause."""
    if not rows:
        return
    transaction = await ready("insert_rows", write=True)
    names = ", ".join(columns)
    backend = driver()
    if isinstance(backend, Postgres):
        types = await backend.column_types(transaction.connection, table)
        arrays = ", ".join(f"${n}::{types[c]}[]" for n, c in enumerate(columns, 1))
        sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {upsert}"
        await transaction.connection.execute(sql, *(list(c) for c in zip(*rows, strict=True)))
    else:
        assert isinstance(backend, SQLite)
        backend.insert_rows(transaction.connection, table, columns, rows, upsert)


async def update_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set `columns` of the rows whose ids end each of `rows` (values in the order of
    `columns`, then the id), in the current write transaction: on PostgreSQL in one
    statement (the values as arrays, through unnest), on SQLite in multi-row statements
    that join the table to a list of VALUES. The ids must be unique."""
    if not rows:
        return
    transaction = await ready("update_rows", write=True)
    backend = driver()
    if isinstance(backend, Postgres):
        types = await backend.column_types(transaction.connection, table)
        arrays = ", ".join(f"${n}::{types[c]}[]" for n, c in enumerate([*columns, "id"], 1))
        sets = ", ".join(f"{c} = v.{c}" for c in columns)
        sql = (
            f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({', '.join(columns)}, id)"
            f" WHERE {table}.id = v.id"
        )
        await transaction.connection.execute(sql, *(list(c) for c in zip(*rows, strict=True)))
    else:
        assert isinstance(backend, SQLite)
        backend.update_rows(transaction.connection, table, columns, rows)


def any_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """A condition that `column` is one of `values`, with its arguments: on PostgreSQL
    `= ANY` of one array (one statement text, planned once, however many values); on
    SQLite an IN list, padded(). Callers keep `values` to a few hundred at a time."""
    if isinstance(driver(), Postgres):
        return f"{column} = ANY({{}})", [list(values)]
    values = padded(values)
    return f"{column} IN ({', '.join('{}' for _ in values)})", values


def padded(values: Sequence[T]) -> list[T]:
    """`values` for an IN list on SQLite, its length rounded up to a power of two by
    repeating the last: the same few statement texts come back, and their prepared
    statements (sqlite3 keeps them per connection, by text) are reused."""
    items = list(values)
    size = 1
    while size < len(items):
        size *= 2
    return items + items[-1:] * (size - len(items))
