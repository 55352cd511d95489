"""A record's history as SPEC section 11 answers it: to whoever sees the record, and to an
admin also after it is deleted (or gone); 404 otherwise, as for a record they do not see."""

from __future__ import annotations

import json
import uuid

from server import db
from server.core.actor import Actor
from server.core.fields import SERVER_MADE, TABLES
from server.core.history import at_text
from server.errors import ApiError
from server.history.schemas import Entry, History

HISTORY_TABLES = TABLES - frozenset(SERVER_MADE)
# An account's history can be long; a page of this many is more than a screen shows.
MAX_ENTRIES = 5000


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "There is no such record, or you cannot see it.")


async def history(actor: Actor, table: str, record_id: str) -> History:
    if table not in HISTORY_TABLES:
        raise _not_found()
    try:
        record_id = str(uuid.UUID(record_id))
    except ValueError:
        raise _not_found() from None
    async with db.read_transaction():  # the record and its entries in one snapshot
        rows = await db.fetch(f"SELECT scope, deleted FROM {table} WHERE id = {{}}", record_id)
        if actor.is_admin:
            pass  # an admin reads a deleted record's history too (and a purged one's)
        elif not rows or rows[0]["deleted"] or not actor.sees(rows[0]["scope"]):
            raise _not_found()
        entries = await db.fetch(
            "SELECT h.seq, h.at, h.user_id, u.username, h.client_id, h.source, h.op, h.fields"
            " FROM history h LEFT JOIN users u ON u.id = h.user_id"
            " WHERE h.record_id = {} AND h.record_table = {} ORDER BY h.seq LIMIT {}",
            record_id,
            table,
            MAX_ENTRIES,
        )
    if not rows and not entries:
        raise _not_found()
    return History(
        entries=[
            Entry(
                seq=int(e["seq"]),
                at=at_text(e["at"]),
                user_id=None if e["user_id"] is None else str(e["user_id"]),
                username=e["username"],
                client_id=e["client_id"],
                source=e["source"],
                op=e["op"],
                fields=json.loads(e["fields"]),
            )
            for e in entries
        ]
    )
