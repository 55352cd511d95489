"""The device report (SPEC 4 rule 14): per (user, client_id), when it last synced, the last
`device` object it sent, and the server's count of its applied writes."""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Column
from piccolo.columns.column_types import BigInt, Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync_clients: last_sync_ms, device, writes"

# (column, column class, default, nullable)
COLUMNS: list[tuple[str, type[Column], Any, bool]] = [
    ("last_sync_ms", BigInt, None, True),
    ("device", Text, None, True),
    ("writes", BigInt, 0, False),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="syncing", description=DESCRIPTION)
    for column, column_class, default, nullable in COLUMNS:
        manager.add_column(
            table_class_name="SyncClient",
            tablename="sync_clients",
            column_name=column,
            db_column_name=column,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params={
                "default": default,
                "null": nullable,
                "primary_key": False,
                "unique": False,
                "index": False,
                "index_method": IndexMethod.btree,
                "choices": None,
                "db_column_name": None,
                "secret": False,
            },
            schema=None,
        )
    return manager
