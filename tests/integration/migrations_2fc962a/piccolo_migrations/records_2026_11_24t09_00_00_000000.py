"""The nearby search's index, and what the geocoder remembers between rounds.

accounts_scope_lat_lng: a rep's nearby search is `scope IN (team, user) AND lat BETWEEN ..
AND lng BETWEEN ..`; with this index both engines read only the team's accounts in the lat
band and check lng in the index (accounts_lat_lng serves an admin's search, over every scope).
Without it SQLite picks accounts_scope_seq and reads the whole team (bench/nearby.py).

geocoding_attempts: one row per account the geocoder could not place yet: the address it
tried (a changed address is tried again at once), whether it was not found or the service
failed, and when a failed account may be tried again (docs/geo.md). Bookkeeping of the
server's own, not a record: it never syncs.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "nearby index and geocoding attempts"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS accounts_scope_lat_lng ON accounts (scope, lat, lng)",
    "CREATE TABLE IF NOT EXISTS geocoding_attempts ("
    " account_id UUID PRIMARY KEY NOT NULL,"
    " street VARCHAR(200), city VARCHAR(100), region VARCHAR(100),"
    " postal_code VARCHAR(20), country VARCHAR(100),"
    " outcome VARCHAR(20) NOT NULL,"
    " failures INTEGER NOT NULL DEFAULT 0,"
    " retry_at BIGINT,"
    " attempted_at BIGINT NOT NULL)",
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
