"""Three fewer indexes on accounts, which nothing reads.

Nothing looks accounts up by owner or by team (a rep's scope is their team's, and the
scope is on the row), and every query by scope is served by an index that starts with it:
accounts (scope, deleted, name, id, seq) for lists and accounts (scope, lat, lng) for
nearby. An account write now maintains 5 indexes instead of 8."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Column
from piccolo.columns.column_types import UUID, Varchar

ID = "2026-11-24T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop unused account indexes"

# (column, column class) of accounts whose index goes.
UNINDEXED: list[tuple[str, type[Column]]] = [
    ("scope", Varchar),
    ("owner_id", UUID),
    ("team_id", UUID),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    for column, column_class in UNINDEXED:
        manager.alter_column(
            table_class_name="Account",
            tablename="accounts",
            column_name=column,
            db_column_name=column,
            params={"index": False},
            old_params={"index": True},
            column_class=column_class,
            old_column_class=column_class,
            schema=None,
        )
    return manager
