"""Nothing, now: this migration dropped accounts (scope, seq), an index of the records
app's table, and the records app's migration of the same time drops it instead
(records_2026_11_24t11_00_00_000000). It stays so that the migrations a database has run
are still all on disk."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-24T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "nothing (the records app drops accounts (scope, seq))"


async def forwards() -> MigrationManager:
    return MigrationManager(migration_id=ID, app_name="syncing", description=DESCRIPTION)
