"""Indexes the cursor and exactly-once need, and the sync counters' first values.

It also made indexes of other apps' tables, which each app's migrations now make for its
own: accounts (lat, lng) and login_attempts (username, at) are the records and auth apps'
migrations of the same time (their `IF NOT EXISTS` leaves them be in a database that ran
this one), and accounts (scope, seq), which records_2026_11_24t11_00_00_000000 drops, a new
database never makes.
"""

import secrets

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T19:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync indexes and counters"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS sync_changes_scope_seq ON sync_changes (scope, seq)",
    "CREATE INDEX IF NOT EXISTS sync_changes_record ON sync_changes (record_table, record_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS sync_clients_user_client"
    " ON sync_clients (user_id, client_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS sync_results_user_client_mid"
    " ON sync_results (user_id, client_id, mid)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="syncing", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)
        epoch = secrets.token_hex(8)
        for key, value in (
            ("seq", "0"),
            ("epoch", epoch),
            ("purged_seq", "0"),
            ("hlc_ms", "0"),
            ("hlc_counter", "0"),
        ):
            await engine.run_ddl(
                f"INSERT INTO sync_meta (key, value, version) VALUES ('{key}', '{value}', 0)"
            )

    manager.add_raw(run)
    return manager
