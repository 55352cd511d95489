"""The index a user's push subscriptions are read by.

This migration also made tasks_reminder_due, the index of the tasks waiting for a reminder:
tasks is the records app's table, so that index is the records app's migration of the same
time now (records_2026_11_23t20_10_30_000000), whose `IF NOT EXISTS` leaves it be in a
database that ran this migration before.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T20:10:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "index of a user's push subscriptions"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id, created_at)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="push", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
