"""Indexes the cursor and exactly-once need, and the sync counters' first values."""

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
    "CREATE INDEX IF NOT EXISTS accounts_lat_lng ON accounts (lat, lng)",
    "CREATE INDEX IF NOT EXISTS accounts_scope_seq ON accounts (scope, seq)",
    "CREATE INDEX IF NOT EXISTS login_attempts_username_at ON login_attempts (username, at)",
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
