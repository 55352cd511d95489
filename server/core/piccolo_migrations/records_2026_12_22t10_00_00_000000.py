"""org_settings (server/core/automation.py): the organisation's settings an admin changes
at run time, such as the built-in rules' switches (docs/automation.md). No row: the default."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import UUID, Text, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "org settings"


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
    manager.add_table(class_name="OrgSetting", tablename="org_settings", schema=None, columns=None)
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("key", Varchar, _params(length=60, default="", primary_key=True)),
        ("value", Text, _params(default="")),
        ("updated_at", Timestamptz, _params(default=None, null=True)),
        ("updated_by", UUID, _params(default=None, null=True)),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="OrgSetting",
            tablename="org_settings",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
