"""The history table (SPEC section 11, server/core/history.py): one row per applied change
to a record, with each record's hash chain. Looked up by record (`record_id`'s index)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import UUID, BigInt, Text, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-21T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "history"


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
    manager.add_table(class_name="HistoryEntry", tablename="history", schema=None, columns=None)
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("seq", BigInt, _params(default=0, primary_key=True)),
        ("record_table", Varchar, _params(length=20, default="")),
        ("record_id", UUID, _params(default=None, index=True)),
        ("at", Timestamptz, _params(default=None)),
        ("user_id", UUID, _params(default=None, null=True)),
        ("client_id", Text, _params(default="")),
        ("source", Varchar, _params(length=20, default="")),
        ("op", Varchar, _params(length=10, default="")),
        ("fields", Text, _params(default="")),
        ("prev_hash", Varchar, _params(length=64, default="")),
        ("hash", Varchar, _params(length=64, default="")),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="HistoryEntry",
            tablename="history",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
