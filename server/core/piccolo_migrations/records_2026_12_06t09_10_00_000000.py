"""Fills in the v1.1 server-kept fields for the rows already there, and makes the indexes
the team report reads by (docs/decisions/2026-12-06-team-report-indexes.md).

- accounts.last_visit_at: the latest `started_at` of the account's live visits.
- accounts.created_by: the user of the oldest stamp among the account's fields (a field
  nobody changed since still carries the create's stamp), else its owner.
- tasks.done_at: for a done task, the clock of the write that set `done`.
- deals.stage_changed_at: the clock of the write that set `stage`.

Rows already on phones are not sent again for this: a phone gets the fields with the
record's next change, or all of them on a reset (docs/reports.md).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-06T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "fill in the report's fields; the report's indexes"

LAST_VISIT = (
    "UPDATE accounts SET last_visit_at = (SELECT MAX(v.started_at) FROM visits v"
    " WHERE v.account_id = accounts.id AND v.deleted = false)"
)
POSTGRES = [
    LAST_VISIT,
    "UPDATE accounts SET created_by = COALESCE((SELECT (s.value ->> 3)::uuid"
    " FROM jsonb_each(accounts.clocks::jsonb) AS s"
    " WHERE jsonb_typeof(s.value) = 'array' AND s.value ->> 3 IS NOT NULL"
    " ORDER BY (s.value ->> 4)::bigint LIMIT 1), owner_id) WHERE created_by IS NULL",
    "UPDATE tasks SET done_at = COALESCE(to_timestamp((clocks::jsonb -> 'done' ->> 0)::bigint"
    " / 1000.0), updated_at) WHERE done AND done_at IS NULL",
    "UPDATE deals SET stage_changed_at = COALESCE(to_timestamp((clocks::jsonb -> 'stage' ->> 0)"
    "::bigint / 1000.0), created_at) WHERE stage_changed_at IS NULL",
]
# SQLite keeps a TIMESTAMPTZ as Python's str() of the UTC datetime: "2026-12-06 09:00:00+00:00".
SQLITE_TIME = "strftime('%Y-%m-%d %H:%M:%f', {} / 1000.0, 'unixepoch') || '+00:00'"
SQLITE = [
    LAST_VISIT,
    "UPDATE accounts SET created_by = COALESCE((SELECT json_extract(s.value, '$[3]')"
    " FROM json_each(accounts.clocks) AS s"
    " WHERE s.type = 'array' AND json_extract(s.value, '$[3]') IS NOT NULL"
    " ORDER BY json_extract(s.value, '$[4]') LIMIT 1), owner_id) WHERE created_by IS NULL",
    "UPDATE tasks SET done_at = COALESCE("
    + SQLITE_TIME.format("json_extract(clocks, '$.done[0]')")
    + ", updated_at) WHERE done AND done_at IS NULL",
    "UPDATE deals SET stage_changed_at = COALESCE("
    + SQLITE_TIME.format("json_extract(clocks, '$.stage[0]')")
    + ", created_at) WHERE stage_changed_at IS NULL",
]
INDEXES = [
    # Per rep, a range of times: the report counts each rep's rows with one index range
    # each (no sort), and reads nothing else of the row.
    "CREATE INDEX IF NOT EXISTS visits_report"
    " ON visits (scope, user_id, started_at, verification, account_id, deleted)",
    "CREATE INDEX IF NOT EXISTS notes_report ON notes (scope, author_id, created_at, deleted)",
    "CREATE INDEX IF NOT EXISTS tasks_report ON tasks (scope, assignee_id, done_at, done, deleted)",
    "CREATE INDEX IF NOT EXISTS accounts_report_created"
    " ON accounts (scope, created_by, created_at, deleted)",
    "CREATE INDEX IF NOT EXISTS accounts_report_visited ON accounts (scope, last_visit_at)",
    # The open pipeline: what it sums, read from the index alone.
    "CREATE INDEX IF NOT EXISTS deals_report"
    " ON deals (scope, stage, owner_id, currency, amount, deleted)",
]
# Their one-column scope indexes go: the report's indexes (and tasks_list) start with scope
# and serve every lookup by it, so a write maintains as many indexes as before.
UNINDEXED = [("Visit", "visits"), ("Note", "notes"), ("Task", "tasks"), ("Deal", "deals")]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        statements = POSTGRES if isinstance(engine, PostgresEngine) else SQLITE
        for statement in [*statements, *INDEXES]:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    for class_name, table in UNINDEXED:
        manager.alter_column(
            table_class_name=class_name,
            tablename=table,
            column_name="scope",
            db_column_name="scope",
            params={"index": False},
            old_params={"index": True},
            column_class=Varchar,
            old_column_class=Varchar,
            schema=None,
        )
    return manager
