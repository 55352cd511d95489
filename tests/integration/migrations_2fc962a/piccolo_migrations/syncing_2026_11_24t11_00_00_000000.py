"""accounts (scope, seq) goes: the sync cursor reads sync_changes, the lists and the
nearby search have indexes of their own, and a record's seq changes at every write (see
the records app's migration of the same time)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop accounts (scope, seq)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="syncing", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS accounts_scope_seq")

    manager.add_raw(run)
    return manager
