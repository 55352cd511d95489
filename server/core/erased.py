"""Records erased on request (SPEC section 12): how the core recognises an id an erasure
took. Its row is gone from its table; `erased_records` keeps the id (and nothing of its
values), so that the storage session can hand the rules a marker in its place: a write to
it, or to something that hangs off it, is then refused (`erased`) and kept nowhere.

The erasure itself is server/core/erasure.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from server import db
from server.core.rows import IN_CHUNK, chunks
from sync.engine import StoredRecord

# The scope of an erased record's marker: no user's scope is called so, so nobody sees it.
ERASED_SCOPE = "erased"
ERASED_DETAIL = "This record was erased on request; the change was not kept."


def erased_marker(table: str, record_id: str) -> StoredRecord:
    """What the session gives for an erased id: a tombstone with no values, in no one's
    scope."""
    return StoredRecord(table, record_id, {}, {}, True, 0, ERASED_SCOPE)


def is_erased(record: StoredRecord | None) -> bool:
    return record is not None and record.scope == ERASED_SCOPE


async def erased_among(table: str, ids: Sequence[str]) -> set[str]:
    """Which of these ids of `table` an erasure took."""
    found: set[str] = set()
    for chunk in chunks(ids, IN_CHUNK):
        where, args = db.any_of("record_id", chunk)
        rows = await db.fetch(
            f"SELECT record_id FROM erased_records WHERE {where} AND record_table = {{}}",
            *args,
            table,
        )
        found |= {str(r["record_id"]) for r in rows}
    return found
