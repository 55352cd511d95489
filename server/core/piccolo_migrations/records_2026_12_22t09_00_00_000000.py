"""history: its index is (record_id, seq), not (record_id).

Every write of a record needs the hash of the record's newest entry (server/core/history.py).
With an index on record_id alone, finding it read every entry the record has, so the read
grew with the record's history: a batch of 276 account edits spent 40 ms in it after a few
thousand changes (docs/decisions/2026-12-06-sync-write-cpu.md). On (record_id, seq) the
newest entry is the last of the record's index entries, one seek; the same index serves
reading a record's history in order (GET /api/history) and `fieldcrm verify-history`."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID
from piccolo.engine import engine_finder

ID = "2026-12-22T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "history by record and seq"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)
    manager.alter_column(
        table_class_name="HistoryEntry",
        tablename="history",
        column_name="record_id",
        db_column_name="record_id",
        params={"index": False},
        old_params={"index": True},
        column_class=UUID,
        old_column_class=UUID,
        schema=None,
    )

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS history_record_id")
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS history_record_seq ON history (record_id, seq)"
        )

    manager.add_raw(run)
    return manager
