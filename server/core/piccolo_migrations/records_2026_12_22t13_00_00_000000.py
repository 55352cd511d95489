"""merged_records (SPEC section 9, rule 13): each record merged into another, while the
merge stands, looked up by the merged record's id (a write to it) and by merge."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import UUID, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merged records"


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


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    manager.add_table(
        class_name="MergedRecord", tablename="merged_records", schema=None, columns=None
    )
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("record_id", UUID, _params(default=None, primary_key=True)),
        ("record_table", Varchar, _params(length=20, default="")),
        ("survivor_id", UUID, _params(default=None)),
        ("merge_id", UUID, _params(default=None, index=True)),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="MergedRecord",
            tablename="merged_records",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
