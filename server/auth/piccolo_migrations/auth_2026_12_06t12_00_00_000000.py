"""The index the login throttle counts a (username, address)'s recent failures by.

With only (username, at), guesses at one username from many addresses would make every
count read all of them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "login attempts by (username, address, at)"

STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS login_attempts_pair_at ON login_attempts (username, address, at)",
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
