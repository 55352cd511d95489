"""Applying the migrations, safely from several processes at once."""

from __future__ import annotations

import contextlib
import io
import os

from server import db

MIGRATION_LOCK_KEY = 7_346_114_020


async def migrate() -> None:
    """Apply every pending migration of every app, in dependency order."""
    # A write, not a read of our configuration: Piccolo's migration commands and
    # engine_finder() find the apps and the engine through this variable, and nothing else.
    os.environ["PICCOLO_CONF"] = "server.piccolo_conf"
    from piccolo.apps.migrations.commands.forwards import run_forwards

    import server.piccolo_conf as conf

    conf.DB = db.engine()
    # Piccolo caches the engine on its own migrations table; point it at ours.
    from piccolo.apps.migrations.tables import Migration

    Migration._meta.db = db.engine()
    lock = None
    if db.is_postgres():
        # A session lock on its own connection: a second process starting at the same
        # time waits here instead of creating the same tables twice.
        import asyncpg

        cfg = db.engine().config  # type: ignore[attr-defined]
        lock = await asyncpg.connect(**cfg)
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        # Piccolo prints a heading per app; keep `fieldcrm serve` quiet.
        with contextlib.redirect_stdout(io.StringIO()) as out:
            result = await run_forwards(app_name="all")
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}\n{out.getvalue()}")
    finally:
        if lock is not None:
            await lock.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
            await lock.close()
    if not db.is_postgres():
        await db.engine()._run_in_new_connection("PRAGMA journal_mode=WAL")  # type: ignore[attr-defined]
