"""tasks.kind (SPEC section 3, v1.1): `todo` or `visit`, a planned visit to the task's
account at its due time (section 14). Every task there is already is a `todo`."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tasks.kind"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Task",
        tablename="tasks",
        column_name="kind",
        db_column_name="kind",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 10,
            "default": "todo",
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
