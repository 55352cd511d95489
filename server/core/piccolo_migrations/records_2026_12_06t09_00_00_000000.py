"""v1.1 server-kept fields the team report reads (SPEC section 3 and 7): accounts.created_by
and accounts.last_visit_at, tasks.done_at, deals.stage_changed_at. The next migration fills
them in for the rows already there."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Column
from piccolo.columns.column_types import UUID, Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "created_by, last_visit_at, done_at, stage_changed_at"

# (table class, table, column, column class): each nullable, null by default.
COLUMNS: list[tuple[str, str, str, type[Column]]] = [
    ("Account", "accounts", "created_by", UUID),
    ("Account", "accounts", "last_visit_at", Timestamptz),
    ("Task", "tasks", "done_at", Timestamptz),
    ("Deal", "deals", "stage_changed_at", Timestamptz),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    for class_name, table, column, column_class in COLUMNS:
        manager.add_column(
            table_class_name=class_name,
            tablename=table,
            column_name=column,
            db_column_name=column,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params={
                "default": None,
                "null": True,
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
