"""The index the dispatcher's search for due reminders runs on.

Only tasks still waiting for a reminder are in it, so the search stays quick however many
old, reminded or done tasks pile up. The dispatcher's query repeats these terms word for
word: SQLite uses a partial index only when the query names its conditions.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T20:10:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "index of the tasks waiting for a reminder"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS tasks_reminder_due ON tasks (remind_at)"
    " WHERE done = false AND deleted = false AND remind_at IS NOT NULL"
    " AND (reminded_at IS NULL OR reminded_at < remind_at)",
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
