"""attachments' indexes (a migration of its own: a migration's raw statements run before
the tables it adds are made).

- attachments_list: the REST list (GET /api/attachments, newest first), from the index
  alone, as the other lists (records_2026_11_24t10_00_00).
- attachments_search: the search of captions, as every record table's (the records app's
  migration of 2026-12-20T09:00 says how): an FTS5 table kept by triggers on SQLite, a GIN
  index on the full-text vector on PostgreSQL, with fieldcrm_search_text() made again as
  that migration made it (`CREATE OR REPLACE`: this one stands on its own).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-22T11:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "attachments' list and search indexes"

LIST = (
    "CREATE INDEX IF NOT EXISTS attachments_list"
    " ON attachments (scope, deleted, updated_at, id, seq)"
)
POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # Word for word the function of the records app's migration of 2026-12-20T09:00.
    "CREATE OR REPLACE FUNCTION fieldcrm_search_text(text) RETURNS text"
    " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS"
    " $$ SELECT regexp_replace(lower(public.unaccent('public.unaccent'::regdictionary, $1)),"
    " '[[:punct:]]+', ' ', 'g') $$",
    LIST,
    "CREATE INDEX IF NOT EXISTS attachments_search ON attachments USING gin"
    " (to_tsvector('simple'::regconfig, fieldcrm_search_text(coalesce(caption, ''))))",
]
SQLITE = [
    LIST,
    "CREATE VIRTUAL TABLE IF NOT EXISTS attachments_search USING fts5(caption,"
    " content='attachments', content_rowid='rowid', prefix='1 2', detail=column,"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS attachments_search_insert AFTER INSERT ON attachments BEGIN"
    " INSERT INTO attachments_search(rowid, caption) VALUES (new.rowid, new.caption); END",
    "CREATE TRIGGER IF NOT EXISTS attachments_search_delete AFTER DELETE ON attachments BEGIN"
    " INSERT INTO attachments_search(attachments_search, rowid, caption)"
    " VALUES ('delete', old.rowid, old.caption); END",
    "CREATE TRIGGER IF NOT EXISTS attachments_search_update AFTER UPDATE OF caption"
    " ON attachments WHEN old.caption IS NOT new.caption BEGIN"
    " INSERT INTO attachments_search(attachments_search, rowid, caption)"
    " VALUES ('delete', old.rowid, old.caption);"
    " INSERT INTO attachments_search(rowid, caption) VALUES (new.rowid, new.caption); END",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in POSTGRES if engine.engine_type == "postgres" else SQLITE:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
