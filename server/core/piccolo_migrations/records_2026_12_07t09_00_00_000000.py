"""Two tables of the records core for the limits (server/core/limits.py): write_budgets
(each writer's token bucket for the write rate) and scope_usage (the live records each
scope holds, for the team storage quota; the next migration counts what is there)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, BigInt, Varchar
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.base import Column
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "write_budgets and scope_usage"


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
        class_name="WriteBudget", tablename="write_budgets", schema=None, columns=None
    )
    manager.add_table(
        class_name="ScopeUsageRow", tablename="scope_usage", schema=None, columns=None
    )
    columns: list[tuple[str, str, str, type[Column], dict[str, object]]] = [
        ("WriteBudget", "write_budgets", "user_id", UUID, _params(default=UUID4(), primary_key=True)),
        ("WriteBudget", "write_budgets", "full_at_us", BigInt, _params(default=0)),
        ("ScopeUsageRow", "scope_usage", "scope", Varchar, _params(length=60, default="", primary_key=True)),
        ("ScopeUsageRow", "scope_usage", "records", BigInt, _params(default=0)),
    ]  # fmt: skip
    for class_name, tablename, name, column_class, params in columns:
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
