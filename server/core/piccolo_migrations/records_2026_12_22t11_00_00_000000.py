"""attachments (SPEC sections 3 and 13, v1.1): a photo or a voice note on a visit, a note
or an account, synced like any record; its bytes are kept apart, by SHA-256
(server/attachments/). The next migration makes its list and search indexes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import (
    UUID,
    BigInt,
    Boolean,
    DoublePrecision,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "attachments"


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
    manager.add_table(class_name="Attachment", tablename="attachments", schema=None, columns=None)
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("id", UUID, _params(default=UUID4(), primary_key=True)),
        ("created_at", Timestamptz, _params(default=TimestamptzNow())),
        ("updated_at", Timestamptz, _params(default=TimestamptzNow())),
        ("seq", BigInt, _params(default=0)),
        ("scope", Varchar, _params(length=60, default="")),
        ("deleted", Boolean, _params(default=False)),
        ("clocks", Text, _params(default="{}")),
        ("sha256", Varchar, _params(length=64, default="", index=True)),
        ("media_type", Varchar, _params(length=40, default="")),
        ("bytes", BigInt, _params(default=0)),
        ("visit_id", UUID, _params(default=None, null=True)),
        ("note_id", UUID, _params(default=None, null=True)),
        ("account_id", UUID, _params(default=None, null=True, index=True)),
        ("caption", Text, _params(default=None, null=True)),
        ("captured_at", Timestamptz, _params(default=None, null=True)),
        ("lat", DoublePrecision, _params(default=None, null=True)),
        ("lng", DoublePrecision, _params(default=None, null=True)),
        ("author_id", UUID, _params(default=None, null=True)),
        ("uploaded", Boolean, _params(default=False)),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="Attachment",
            tablename="attachments",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
