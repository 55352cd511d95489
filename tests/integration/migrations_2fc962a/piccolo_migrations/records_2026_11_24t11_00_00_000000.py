"""Fewer indexes for every record write to keep up.

A record's seq changes at every write, so each index on it is rewritten each time, and
nothing looks records up by seq (the sync cursor reads sync_changes): the seq indexes go
(and accounts (scope, seq), in the syncing app's migration of the same time). accounts
(lat) repeats the start of accounts (lat, lng). An account update now maintains 8 indexes
instead of 11 (bench/sync.py, ingest and reconnect)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt, DoublePrecision

ID = "2026-11-24T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop unused record indexes"

# (table class, table, column, column class) whose index goes.
UNINDEXED = [
    ("Account", "accounts", "seq", BigInt),
    ("Contact", "contacts", "seq", BigInt),
    ("Visit", "visits", "seq", BigInt),
    ("Note", "notes", "seq", BigInt),
    ("Task", "tasks", "seq", BigInt),
    ("Deal", "deals", "seq", BigInt),
    ("Conflict", "conflicts", "seq", BigInt),
    ("Account", "accounts", "lat", DoublePrecision),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    for class_name, tablename, column, column_class in UNINDEXED:
        manager.alter_column(
            table_class_name=class_name,
            tablename=tablename,
            column_name=column,
            db_column_name=column,
            params={"index": False},
            old_params={"index": True},
            column_class=column_class,
            old_column_class=column_class,
            schema=None,
        )
    return manager
