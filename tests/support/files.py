"""Reading a test database's files as files: what an erasure must leave no byte of."""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import IN_CI, PG_HOST, PG_PORT, PG_USER, Database


def marker() -> str:
    """Letters no UUID or hash holds, so that finding them in a file means a value."""
    return "".join(random.choice("ghjkmnpqrstvwxyz") for _ in range(12))


async def database_files(database: Database) -> list[Path]:
    """Every file the database keeps its data in, as it is on disk now: SQLite's file and
    its write-ahead log; every file of the PostgreSQL database's directory (its tables,
    their TOAST and indexes, and the catalogue), after a checkpoint has written out what
    was only in memory (the tests run as the server's superuser, on the same machine)."""
    if database.engine == "sqlite":
        path = Path(database.config.path)
        return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=database.config.database
    )
    try:
        await conn.execute("CHECKPOINT")
        data_dir = await conn.fetchval("SHOW data_directory")
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
    finally:
        await conn.close()
    directory = Path(data_dir) / "base" / str(oid)
    if not directory.is_dir():
        message = f"PostgreSQL's data directory {directory} is not readable from the tests"
        if IN_CI:  # CI runs PostgreSQL on its own machine: the check must run there
            pytest.fail(message)
        pytest.skip(message + " (a server on another machine?)")
    return [p for p in directory.iterdir() if p.is_file()]


async def files_holding(database: Database, needle: str) -> list[str]:
    """The names of the database's files that hold `needle` (UTF-8), byte for byte."""
    found = []
    for path in await database_files(database):
        try:
            if needle.encode() in path.read_bytes():
                found.append(path.name)
        except FileNotFoundError:  # a relation file dropped while we read
            continue
    return found
