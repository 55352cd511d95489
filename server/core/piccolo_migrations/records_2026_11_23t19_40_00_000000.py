"""The index an admin's nearby search reads accounts by, over every scope.

It was made by the syncing app's migration of the same time until each app's migrations
touched only its own tables; `IF NOT EXISTS` leaves it be in a database that ran that one.
(That migration also made accounts (scope, seq), which records_2026_11_24t11_00_00_000000
drops: a new database never makes it.)
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T19:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts (lat, lng)"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS accounts_lat_lng ON accounts (lat, lng)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
