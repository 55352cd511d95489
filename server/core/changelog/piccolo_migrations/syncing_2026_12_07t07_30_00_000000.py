"""Writers per team (issue 20): sync_meta's `commits`, how many write transactions that
handed out seqs have committed. Each raises it by one in its last statement, which also
sends its notification (server/core/changelog/newest.py), so the numbers are in commit
order when seqs are only in order within a team; a process knows it has heard of every
commit up to now when it has heard the number the database holds."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T07:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync_meta.commits"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="syncing", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "INSERT INTO sync_meta (key, value, version) VALUES ('commits', '0', 0)"
            " ON CONFLICT DO NOTHING"
        )

    manager.add_raw(run)
    return manager
