"""An index built for searching each record table's text (GET /api/{table}?q=...).

The search matches words by their start, blind to case and accents (docs/api.md). Before,
it was `LOWER(field) LIKE '%typed%'` over every row in the caller's scope: a search over
long notes read every byte of them, seconds for one request.

- SQLite: an FTS5 table per record table, `{table}_search`, over the searched fields, with
  the record table as its external content (it keeps only the index, not a second copy of
  the text), tokenizer `unicode61 remove_diacritics 2`. Prefix indexes of one and two
  characters: without them a search of one-letter words merged the postings of every word
  starting with each (eight such words over 2,000 long notes: 256 ms; with them 1 ms).
  `detail=column` (no word positions: the search never asks for phrases) keeps the whole
  index smaller than without the prefix indexes (bench/search.py). Triggers keep it in step with every
  insert, change of a searched field and delete, whoever makes them; the migration fills it
  from the rows already there ('rebuild'). Its rows are the record table's rowids, which
  SQLite keeps through VACUUM (a test checks).
- PostgreSQL: a GIN index per table on the searched fields' full-text vector
  (`to_tsvector('simple', fieldcrm_search_text(...))`); fieldcrm_search_text() folds
  accents (the `unaccent` extension), case and punctuation, so that words split where
  SQLite's tokenizer splits them. The query repeats the indexed expression word for word
  (server/records/search.py). Creating the index reads the rows already there.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-20T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search indexes"

# The fields each table's search looks in (as server/records/search.py's SEARCHED then).
SEARCHED = {
    "accounts": ("name", "city"),
    "contacts": ("name", "email"),
    "visits": ("summary",),
    "notes": ("body",),
    "tasks": ("title",),
    "deals": ("title",),
    "conflicts": ("field",),
    "rejections": ("detail",),
}

POSTGRES_SETUP = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # unaccent() is only STABLE (its dictionary could change); an index needs an IMMUTABLE
    # function, so it is wrapped, naming the dictionary and the schema outright. Its COST
    # tells the planner what folding a long note costs (about 3 ms for 20,000 characters):
    # at the default it read a small table row by row, folding every note, instead of
    # using the index (a second for 300 notes).
    "CREATE OR REPLACE FUNCTION fieldcrm_search_text(text) RETURNS text"
    " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS"
    " $$ SELECT regexp_replace(lower(public.unaccent('public.unaccent'::regdictionary, $1)),"
    " '[[:punct:]]+', ' ', 'g') $$",
]


def document(fields: tuple[str, ...]) -> str:
    """The text PostgreSQL indexes for these fields (the query repeats it)."""
    return " || ' ' || ".join(f"coalesce({field}, '')" for field in fields)


def postgres_statements() -> list[str]:
    return POSTGRES_SETUP + [
        f"CREATE INDEX IF NOT EXISTS {table}_search ON {table} USING gin"
        f" (to_tsvector('simple'::regconfig, fieldcrm_search_text({document(fields)})))"
        for table, fields in SEARCHED.items()
    ]


def sqlite_statements() -> list[str]:
    statements = []
    for table, fields in SEARCHED.items():
        columns = ", ".join(fields)
        new = ", ".join(f"new.{field}" for field in fields)
        old = ", ".join(f"old.{field}" for field in fields)
        changed = " OR ".join(f"old.{field} IS NOT new.{field}" for field in fields)
        index, drop = f"{table}_search", f"INSERT INTO {table}_search({table}_search, rowid"
        statements += [
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {index} USING fts5({columns},"
            f" content='{table}', content_rowid='rowid', prefix='1 2', detail=column,"
            " tokenize='unicode61 remove_diacritics 2')",
            f"CREATE TRIGGER IF NOT EXISTS {index}_insert AFTER INSERT ON {table} BEGIN"
            f" INSERT INTO {index}(rowid, {columns}) VALUES (new.rowid, {new}); END",
            f"CREATE TRIGGER IF NOT EXISTS {index}_delete AFTER DELETE ON {table} BEGIN"
            f" {drop}, {columns}) VALUES ('delete', old.rowid, {old}); END",
            f"CREATE TRIGGER IF NOT EXISTS {index}_update AFTER UPDATE OF {columns} ON {table}"
            f" WHEN {changed} BEGIN"
            f" {drop}, {columns}) VALUES ('delete', old.rowid, {old});"
            f" INSERT INTO {index}(rowid, {columns}) VALUES (new.rowid, {new}); END",
            f"INSERT INTO {index}({index}) VALUES ('rebuild')",
        ]
    return statements


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="records", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        postgres = engine.engine_type == "postgres"
        for statement in postgres_statements() if postgres else sqlite_statements():
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
