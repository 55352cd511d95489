"""merges: the state of a merge that runs in batches (docs/merge.md): `running` while what
hangs off the merged records is still being moved, `undoing` while an undo moves it back,
and `undo_cursor`, the last merge item an undo has put back. A merge made before this
migration was one transaction, finished: false, false and 0 say so. An index of a merge's
items in their order, which an undo's batches walk from its cursor."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import BigInt, Boolean
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder

ID = "2026-12-23T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merges in batches"


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


COLUMNS: list[tuple[str, type[Column], dict[str, object]]] = [
    ("running", Boolean, _params(default=False)),
    ("undoing", Boolean, _params(default=False)),
    ("undo_cursor", BigInt, _params(default=0)),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="merging", description=DESCRIPTION)
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="Merge",
            tablename="merges",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS merge_items_in_order ON merge_items (merge_id, id)"
        )

    manager.add_raw(run)
    return manager
