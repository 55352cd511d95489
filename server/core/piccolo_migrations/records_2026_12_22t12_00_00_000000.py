"""Erasures on request and the retention of history (SPEC section 12, docs/privacy.md):
`erasures` (that a record was erased, when, by whom), `erased_records` (each id an erasure
took, so a later write to it is refused) and `history_cuts` (where the retention job cut a
record's hash chain)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import UUID, BigInt, Text, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "erasures and history cuts"


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


TABLES: list[tuple[str, str, list[tuple[str, type[Column], dict[str, object]]]]] = [
    (
        "Erasure",
        "erasures",
        [
            ("id", UUID, _params(default=None, primary_key=True)),
            ("record_table", Varchar, _params(length=20, default="")),
            ("record_id", UUID, _params(default=None, unique=True)),
            ("erased_at", Timestamptz, _params(default=None)),
            ("erased_by", UUID, _params(default=None, null=True)),
            ("records", BigInt, _params(default=0)),
            ("tables", Text, _params(default="[]")),
            ("reclaimed_at", Timestamptz, _params(default=None, null=True)),
        ],
    ),
    (
        "ErasedRecord",
        "erased_records",
        [
            ("record_id", UUID, _params(default=None, primary_key=True)),
            ("record_table", Varchar, _params(length=20, default="")),
            ("erasure_id", UUID, _params(default=None, index=True)),
        ],
    ),
    (
        "HistoryCut",
        "history_cuts",
        [
            ("record_id", UUID, _params(default=None, primary_key=True)),
            ("record_table", Varchar, _params(length=20, default="")),
            ("seq", BigInt, _params(default=0)),
            ("hash", Varchar, _params(length=64, default="")),
            ("cut_at", Timestamptz, _params(default=None)),
        ],
    ),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    for class_name, tablename, columns in TABLES:
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
