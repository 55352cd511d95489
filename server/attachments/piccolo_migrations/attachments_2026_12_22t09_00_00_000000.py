"""attachment_blobs: the attachments' bytes the server holds (server/attachments/)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import BigInt, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-22T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "attachment_blobs"


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
    manager = MigrationManager(migration_id=ID, app_name="attachments", description=DESCRIPTION)
    manager.add_table(
        class_name="AttachmentBlob", tablename="attachment_blobs", schema=None, columns=None
    )
    columns: list[tuple[str, type[Column], dict[str, object]]] = [
        ("sha256", Varchar, _params(length=64, default="", primary_key=True)),
        ("media_type", Varchar, _params(length=40, default="")),
        ("bytes", BigInt, _params(default=0)),
        ("stored_at", Timestamptz, _params(default=TimestamptzNow())),
    ]
    for name, column_class, params in columns:
        manager.add_column(
            table_class_name="AttachmentBlob",
            tablename="attachment_blobs",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params,
            schema=None,
        )
    return manager
