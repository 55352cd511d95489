"""The index the login rate limit counts a user's recent failures by.

It was made by the syncing app's migration of the same time until each app's migrations
touched only its own tables; `IF NOT EXISTS` leaves it be in a database that ran that one.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T19:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "login attempts index"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS login_attempts_username_at ON login_attempts (username, at)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
