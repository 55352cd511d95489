"""scope_usage counts the live records already there, per scope (a migration of its own:
a migration's raw statements run before the tables it adds are made)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T09:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "scope_usage counts the records there are"

# The client-written record tables (conflicts and rejections are the server's own).
COUNTED = ("accounts", "contacts", "visits", "notes", "tasks", "deals")
STATEMENTS = [
    "DELETE FROM scope_usage",
    "INSERT INTO scope_usage (scope, records) SELECT scope, COUNT(*) FROM ("
    + " UNION ALL ".join(f"SELECT scope FROM {table} WHERE deleted = FALSE" for table in COUNTED)
    + ") AS live GROUP BY scope",
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
