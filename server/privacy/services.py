"""A record's export for an access request, and its erasure on request (SPEC section 12;
docs/privacy.md).

The export is one JSON document: the record; what hangs off it (an account's contacts,
visits, notes, tasks and deals); the history of each; the conflicts and refused writes
about them; the attachments; the people named in it; and links to read each part again.
Its parts are `SECTIONS`, each a function of what is exported: a new kind of data about a
record (attachments, when their table comes) is one more function there.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor
from server.core.erasure import ERASABLE, erasure_of
from server.core.erasure import erase as erase_record
from server.core.fields import CHILD_TABLES
from server.core.history import at_text
from server.core.rows import IN_CHUNK, chunks, record_from_row, wire_row
from server.errors import ApiError
from server.privacy.schemas import EraseRequest, ErasureAnswer
from sync.engine import StoredRecord

FORMAT = "fieldcrm-export/1"
# An export is for one record: these bound it (a part cut short is named in `truncated`).
MAX_ROWS = 10_000  # of each table that hangs off the record
MAX_ENTRIES = 5_000  # history entries per record, as GET /api/history answers
_json = msgspec.json.Encoder(order="sorted")


@dataclass
class Exported:
    """What an export is about, as its sections read it."""

    actor: Actor
    table: str
    record: StoredRecord
    records: list[StoredRecord]  # the record first, then what hangs off it
    truncated: list[str] = field(default_factory=list)
    people: set[str] = field(default_factory=set)  # user ids named, for `people`

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]


def _parse(table: str | None, record_id: str | None) -> tuple[str, str]:
    if table is None or record_id is None:
        raise ApiError(400, "malformed", "Name the record: ?table=accounts|contacts&id=...")
    if table not in ERASABLE:
        raise ApiError(400, "malformed", "table must be accounts or contacts.")
    try:
        return table, str(uuid.UUID(record_id))
    except ValueError:
        raise ApiError(400, "malformed", "id must be the record's UUID.") from None


def _not_found(table: str) -> ApiError:
    return ApiError(
        404, "not_found", f"There is no {table[:-1]} with this id, or you cannot see it."
    )


async def export(actor: Actor, table: str | None, record_id: str | None) -> tuple[bytes, str]:
    """The export document (JSON) and a file name for it. A manager exports what their
    team sees, live records only; an admin anything, deleted records too."""
    if not actor.is_manager:
        raise ApiError(403, "forbidden", "Only a manager or an admin may export a record.")
    table, record_id = _parse(table, record_id)
    async with db.read_transaction():  # every part from one snapshot
        rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", record_id)
        if not rows:
            erased = await erasure_of(record_id)
            if erased is not None:
                raise ApiError(
                    404,
                    "erased",
                    f"This {table[:-1]} was erased on request on"
                    f" {erased['erased_at']:%Y-%m-%d}; nothing of it is kept.",
                )
            raise _not_found(table)
        record = record_from_row(table, rows[0])
        if not actor.is_admin and (record.deleted or not actor.sees(record.scope)):
            raise _not_found(table)
        about = Exported(actor, table, record, [record])
        document: dict[str, Any] = {
            "format": FORMAT,
            "exported_at": at_text(datetime.now(UTC)),
            "exported_by": {"user_id": actor.user_id, "username": actor.username},
            "table": table,
            "id": record_id,
        }
        for name, section in SECTIONS:
            document[name] = await section(about)
        document["people"] = await _people(about.people)
        document["truncated"] = about.truncated
    name = re.sub(r"[^A-Za-z0-9]+", "-", str(record.values.get("name") or ""))[:40].strip("-")
    filename = f"fieldcrm-{table[:-1]}-{name or record_id}.json"
    return _json.encode(document), filename


def _row(record: StoredRecord) -> dict[str, Any]:
    row = wire_row(record)
    if record.deleted:
        row["deleted"] = True
    return row


def _named(about: Exported, row: dict[str, Any]) -> None:
    for name in ("owner_id", "created_by", "user_id", "author_id", "assignee_id"):
        if isinstance(row.get(name), str):
            about.people.add(row[name])


async def _record(about: Exported) -> dict[str, Any]:
    row = _row(about.record)
    _named(about, row)
    return row


async def _hanging_off(about: Exported) -> dict[str, list[dict[str, Any]]]:
    """An account's contacts, visits, notes, tasks and deals; a contact's account (what it
    belongs to, by name)."""
    if about.table == "contacts":
        account_id = about.record.values.get("account_id")
        rows = await db.fetch("SELECT id, name FROM accounts WHERE id = {}", account_id)
        return {"account": [{"id": str(r["id"]), "name": r["name"]} for r in rows]}
    found: dict[str, list[dict[str, Any]]] = {}
    deleted = "" if about.actor.is_admin else " AND deleted = {}"
    for child in CHILD_TABLES:
        args: list[Any] = [about.record.id, *([] if about.actor.is_admin else [False])]
        rows = await db.fetch(
            f"SELECT * FROM {child} WHERE account_id = {{}}{deleted} ORDER BY created_at, id"
            " LIMIT {}",
            *args,
            MAX_ROWS + 1,
        )
        if len(rows) > MAX_ROWS:
            about.truncated.append(child)
        records = [record_from_row(child, row) for row in rows[:MAX_ROWS]]
        about.records += records
        found[child] = [_row(r) for r in records]
        for row in found[child]:
            _named(about, row)
    return found


async def _history(about: Exported) -> list[dict[str, Any]]:
    """Every history entry of the record and of what hangs off it, oldest first."""
    entries: list[dict[str, Any]] = []
    for chunk in chunks(about.ids, IN_CHUNK):
        where, args = db.any_of("h.record_id", chunk)
        rows = await db.fetch(
            "SELECT h.record_table, h.record_id, h.seq, h.at, h.user_id, u.username,"
            " h.client_id, h.source, h.op, h.fields FROM history h"
            f" LEFT JOIN users u ON u.id = h.user_id WHERE {where} ORDER BY h.seq",
            *args,
        )
        entries += [_entry(row) for row in rows]
    per_record: dict[str, int] = {}
    kept = []
    for entry in sorted(entries, key=lambda e: int(e["seq"])):
        count = per_record[entry["record_id"]] = per_record.get(entry["record_id"], 0) + 1
        if count <= MAX_ENTRIES:
            kept.append(entry)
        elif "history" not in about.truncated:
            about.truncated.append("history")
    for entry in kept:
        if entry["user_id"]:
            about.people.add(entry["user_id"])
    return kept


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "table": row["record_table"],
        "record_id": str(row["record_id"]),
        "seq": int(row["seq"]),
        "at": at_text(row["at"]),
        "user_id": None if row["user_id"] is None else str(row["user_id"]),
        "username": row["username"],
        "client_id": row["client_id"],
        "source": row["source"],
        "op": row["op"],
        "fields": json.loads(row["fields"]),
    }


async def _about(about: Exported, table: str) -> list[dict[str, Any]]:
    """The conflicts or refused writes about the record or what hangs off it."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(about.ids, IN_CHUNK):
        where, args = db.any_of("record_id", chunk)
        for row in await db.fetch(f"SELECT * FROM {table} WHERE {where}", *args):
            record = record_from_row(table, row)
            if about.actor.is_admin or about.actor.sees(record.scope):
                found[record.id] = _row(record)
    if about.table == "accounts":
        rows = await db.fetch(f"SELECT * FROM {table} WHERE account_id = {{}}", about.record.id)
        for row in rows:
            record = record_from_row(table, row)
            if about.actor.is_admin or about.actor.sees(record.scope):
                found[record.id] = _row(record)
    for row in found.values():
        for name in ("kept_by", "lost_by", "user_id"):
            if isinstance(row.get(name), str):
                about.people.add(row[name])
    return sorted(found.values(), key=lambda r: (str(r["created_at"]), r["id"]))


async def _conflicts(about: Exported) -> list[dict[str, Any]]:
    return await _about(about, "conflicts")


async def _rejections(about: Exported) -> list[dict[str, Any]]:
    return await _about(about, "rejections")


async def _attachments(about: Exported) -> list[dict[str, Any]]:
    """The photos and voice notes among what hangs off the record: their metadata and where
    their bytes are read (SPEC section 12)."""
    found = []
    for record in about.records:
        if record.table != "attachments":
            continue
        row = _row(record)
        row["link"] = f"/api/attachments/blobs/{record.values.get('sha256')}"
        found.append(row)
    return found


async def _links(about: Exported) -> dict[str, Any]:
    """Where each part is read again through the API."""
    return {
        "record": f"/api/{about.table}/{about.record.id}",
        "history": {r.id: f"/api/history/{r.table}/{r.id}" for r in about.records if not r.deleted},
    }


async def _people(user_ids: set[str]) -> dict[str, str]:
    """The usernames of the people the export names, by user id."""
    names: dict[str, str] = {}
    for chunk in chunks(sorted(user_ids), IN_CHUNK):
        where, args = db.any_of("id", chunk)
        for row in await db.fetch(f"SELECT id, username FROM users WHERE {where}", *args):
            names[str(row["id"])] = row["username"]
    return names


Section = Callable[[Exported], Awaitable[Any]]
# The export's parts, in the order they are read (what hangs off the record before the
# history of it all).
SECTIONS: Sequence[tuple[str, Section]] = (
    ("record", _record),
    ("hangs_off", _hanging_off),
    ("history", _history),
    ("conflicts", _conflicts),
    ("rejections", _rejections),
    ("attachments", _attachments),
    ("links", _links),
)


async def erase(actor: Actor, request: EraseRequest) -> ErasureAnswer:
    if not actor.is_admin:
        raise ApiError(403, "forbidden", "Only an admin may erase a record.")
    if not isinstance(request.table, str) or not isinstance(request.id, str):
        raise ApiError(422, "invalid", 'Send {"table": "accounts" or "contacts", "id": "..."}.')
    if request.table not in ERASABLE:
        raise ApiError(422, "invalid", "table must be accounts or contacts.")
    try:
        record_id = str(uuid.UUID(request.id))
    except ValueError:
        raise ApiError(422, "invalid", "id must be the record's UUID.") from None
    erased = await erase_record(actor, request.table, record_id)
    return ErasureAnswer(
        erasure_id=erased.erasure_id,
        table=erased.table,
        id=erased.record_id,
        erased_at=at_text(erased.erased_at),
        erased_by=erased.erased_by,
        records=erased.records,
        reclaimed=erased.reclaimed,
    )
