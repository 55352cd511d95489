"""campaigns and campaign_accounts (docs/campaigns.md): a campaign, and each of its accounts
with its planned visit."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import UUID, Date, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "campaigns"


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
    ("Campaign", "campaigns"): [
        ("id", UUID, _params(default=None, primary_key=True)),
        ("team_id", UUID, _params(default=None, index=True)),
        ("name", Varchar, _params(length=200, default="")),
        ("starts_on", Date, _params(default=None)),
        ("ends_on", Date, _params(default=None)),
        ("created_by", UUID, _params(default=None, null=True)),
        ("created_at", Timestamptz, _params(default=TimestamptzNow())),
        ("selection", Text, _params(default="{}")),
        ("accounts", Integer, _params(default=0)),
        ("skipped", Text, _params(default="[]")),
    ],
    ("CampaignAccount", "campaign_accounts"): [
        ("campaign_id", UUID, _params(default=None, index=True)),
        ("account_id", UUID, _params(default=None)),
        ("task_id", UUID, _params(default=None, null=True)),
        ("owner_id", UUID, _params(default=None, null=True)),
        ("due_at", Timestamptz, _params(default=None, null=True)),
    ],
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="campaigns", description=DESCRIPTION)
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
