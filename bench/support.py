"""What the bench scripts share: a fresh, migrated database of either engine."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from server import db
from server.migrate import migrate
from server.settings import parse_database_url

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
            db.configure(parse_database_url(url))
            await db.start()
            try:
                await migrate()
                yield url
            finally:
                await db.stop()
        finally:
            if engine == "postgres":
                await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
