"""Indexes for the record lists (GET /api/accounts, /api/tasks): a page's ids and seqs are
found in the index alone (scope, not deleted, in list order), and only the rows the cache
of row versions lacks are read (bench/api.py: a rep's page of accounts 13 ms -> under 1 ms
of SQLite time, an admin's 90 ms -> 1 ms)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "list indexes"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS accounts_list ON accounts (scope, deleted, name, id, seq)",
    # (name, id, deleted), not (deleted, ...): with deleted first SQLite, which has no
    # statistics, takes it for a rep's list too and reads every row to check the scope.
    "CREATE INDEX IF NOT EXISTS accounts_list_all ON accounts (name, id, deleted, seq)",
    "CREATE INDEX IF NOT EXISTS tasks_list ON tasks (scope, deleted, due_at, id, seq)",
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
