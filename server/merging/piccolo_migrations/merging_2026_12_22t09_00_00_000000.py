"""merges and merge_items: the merge log (SPEC section 9), for undo."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import UUID, BigInt, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merge log"


def _params(**given: object) -> dict[str, object]:
    return {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **given,
    }


TABLES: dict[tuple[str, str], list[tuple[str, type[Column], dict[str, object]]]] = {
    ("Merge", "merges"): [
        ("id", UUID, _params(default=None, primary_key=True)),
        ("record_table", Varchar, _params(length=20, default="")),
        ("survivor_id", UUID, _params(default=None, index=True)),
        ("merged_ids", Text, _params(default="")),
        ("fields", Text, _params(default="{}")),
        ("user_id", UUID, _params(default=None)),
        ("created_at", Timestamptz, _params(default=TimestamptzNow())),
        ("undone_at", Timestamptz, _params(default=None, null=True)),
        ("undone_by", UUID, _params(default=None, null=True)),
    ],
    ("MergeItem", "merge_items"): [
        ("merge_id", UUID, _params(default=None, index=True)),
        ("record_table", Varchar, _params(length=20, default="")),
        ("record_id", UUID, _params(default=None)),
        ("kind", Varchar, _params(length=10, default="")),
        ("from_id", UUID, _params(default=None, null=True)),
        ("fields", Text, _params(default="{}")),
        ("seq", BigInt, _params(default=0)),
    ],
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="merging", description=DESCRIPTION)
    for (class_name, tablename), columns in TABLES.items():
        manager.add_table(class_name=class_name, tablename=tablename, schema=None, columns=None)
        for name, column_class, params in columns:
            manager.add_column(
                table_class_name=class_name,
                tablename=tablename,
                column_name=name,
                db_column_name=name,
                column_class_name=column_class.__name__,
                column_class=column_class,
                params=params,
                schema=None,
            )
    return manager
