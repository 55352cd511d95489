"""geocoding_attempts: what the geocoding job remembers between rounds (see tables.py).

The records app's migration of the same time made it before this app existed; `IF NOT EXISTS`
leaves it be in a database that ran that one. That is why this is the same raw statement
rather than Piccolo's add_table, which would fail there; and why `piccolo migrations new
nearby --auto` would add the table again: write this app's migrations by hand.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "geocoding attempts"

STATEMENTS = [
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
    manager = MigrationManager(migration_id=ID, app_name="nearby", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
