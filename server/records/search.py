"""The records' search (GET /api/{table}?q=...): the words typed, each the start of a word
in one of the table's searched fields, blind to case and accents; punctuation separates
words and is never a wildcard (docs/api.md).

It runs on an index built for it (the records app's migration of 2026-12-20T09:00): an
FTS5 table per record table on SQLite, a GIN index on the fields' full-text vector on
PostgreSQL, so a search reads the postings of the words typed, not every byte of every
note. The caller's scope, the filters and the order are the list's, as without a search.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from server import db
from server.errors import ApiError

# The fields each table's search looks in. The migration that builds the indexes names
# the same; a new field here needs a migration that rebuilds the table's index.
SEARCHED = {
    "accounts": ("name", "city"),
    "contacts": ("name", "email"),
    "visits": ("summary",),
    "notes": ("body",),
    "tasks": ("title",),
    "deals": ("title",),
    "conflicts": ("field",),
    "rejections": ("detail",),
    "attachments": ("caption",),
}
MAX_WORDS = 8
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both engines' indexes keep


def words(q: str) -> list[str]:
    """The words of a search as typed: runs of letters and digits (NFKC, so that a
    decomposed accent stays with its letter). More than MAX_WORDS answers 400."""
    found = _WORD.findall(unicodedata.normalize("NFKC", q))
    if len(found) > MAX_WORDS:
        raise ApiError(400, "malformed", f"Search with at most {MAX_WORDS} words.")
    return found


def search_clause(table: str, typed: list[str]) -> tuple[str, list[Any], str, list[Any]]:
    """What keeps the rows of `table` whose searched fields have a word starting with each
    of `typed` (at least one): a `WITH` to put before the SELECT (and its arguments), and
    an ` AND ...` for its WHERE (and its arguments)."""
    fields = SEARCHED[table]
    if db.is_postgres():
        # The indexed expression, word for word (see the migration), against the words
        # folded by the same function. The matches are found first, from the index alone
        # (MATERIALIZED): in one plan with the scope and the order, the planner, which
        # cannot tell how many rows a search matches, could fold every note of the scope
        # instead (3 ms for one of 20,000 characters).
        document = " || ' ' || ".join(f"coalesce({field}, '')" for field in fields)
        return (
            f"WITH found AS MATERIALIZED (SELECT id FROM {table}"
            f" WHERE to_tsvector('simple'::regconfig, fieldcrm_search_text({document}))"
            " @@ (SELECT to_tsquery('simple'::regconfig, string_agg("
            "quote_literal(fieldcrm_search_text(w)) || ':*', ' & '))"
            " FROM unnest({}::text[]) AS w)) ",
            [typed],
            " AND id IN (SELECT id FROM found)",
            [],
        )
    # Each word a quoted prefix query: letters and digits only, so nothing in it is FTS5
    # syntax.
    match = " ".join(f'"{word}"*' for word in typed)
    return (
        "",
        [],
        f" AND rowid IN (SELECT rowid FROM {table}_search WHERE {table}_search MATCH {{}})",
        [match],
    )
