"""imports: `dry_run` (an import run in the background as a dry run keeps its report here
too) and `heartbeat_at` (when its job last moved on: a running import whose heartbeat is
old belongs to a process that stopped)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import Boolean, Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "imports in the background"


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
    manager = MigrationManager(migration_id=ID, app_name="transfer", description=DESCRIPTION)
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("dry_run", Boolean, _params(default=False)),
        ("heartbeat_at", Timestamptz, _params(default=None, null=True)),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="Import",
            tablename="imports",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
