"""users.scope_version: bumped when what a user sees changes wholesale (another team, to or
from admin), so that their devices' cursors from before are not honoured and their next
sync is a reset (server/syncing/services.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "users.scope_version"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)

    manager.add_column(
        table_class_name="User",
        tablename="users",
        column_name="scope_version",
        db_column_name="scope_version",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
