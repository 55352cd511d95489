"""team_moves: when a user changed team, from which to which, so that the writes they made
in their old team before the move still land (SPEC 4 rule 11)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, BigInt
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.base import Column
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "team_moves"


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
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)
    manager.add_table(class_name="TeamMove", tablename="team_moves", schema=None, columns=None)
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("id", UUID, _params(default=UUID4(), primary_key=True)),
        ("user_id", UUID, _params(default=UUID4(), index=True)),
        ("from_team", UUID, _params(default=UUID4())),
        ("to_team", UUID, _params(default=UUID4())),
        ("moved_at_ms", BigInt, _params(default=0)),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="TeamMove",
            tablename="team_moves",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
