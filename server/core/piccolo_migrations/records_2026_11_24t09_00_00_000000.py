"""The nearby search's index.

accounts_scope_lat_lng: a rep's nearby search is `scope IN (team, user) AND lat BETWEEN ..
AND lng BETWEEN ..`; with this index both engines read only the team's accounts in the lat
band and check lng in the index (accounts_lat_lng serves an admin's search, over every scope).
Without it SQLite picks accounts_scope_seq and reads the whole team (bench/nearby.py).

This migration also made geocoding_attempts, the geocoding job's table: that is the nearby
app's migration of the same time now (server/nearby/piccolo_migrations/), whose
`IF NOT EXISTS` leaves the table be in a database that ran this migration before.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "nearby index"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS accounts_scope_lat_lng ON accounts (scope, lat, lng)",
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
