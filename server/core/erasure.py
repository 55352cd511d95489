"""Erasure on request (SPEC section 12): an account or a contact, and everything that hangs
off it, removed from everything the server keeps, leaving only that an erasure of that id
happened, when and by whom (docs/privacy.md).

In one write transaction of the one writer (`erase`):

1. the record is deleted through the writer, as any delete (an account takes its
   children with it), so the rules, the counters and the devices see a delete;
2. the record, what hangs off it (an account's contacts, visits, notes, tasks and deals,
   tombstones included), their conflicts and the refused writes about them lose their rows
   whole; their history entries go, and each keeps one `erase` entry that starts its chain
   again; the change log tells every device that held one to drop it (the storage
   session's `expunge`);
3. what other parts of the server keep of them goes too: the stored results of the refused
   writes (their sentences name the account), the import log's lines about them, reminders
   not yet sent, the geocoder's attempts (an address), the moves between teams;
4. `erasures` and `erased_records` keep the ids: a later write to one is refused
   (`erased`, server/core/erased.py) and kept nowhere;
5. on SQLite the full-text indexes of the tables touched are merged into one segment
   (FTS5 keeps a deleted row's words in older segments until then).

Attachments hang off their account (the server fills `account_id` in), so an account's
go in step 2 with its other children; the hashes of their bytes are written in the
erasure's row (`erasures.blobs`), in the same transaction.

After the commit, `reclaim` finishes the erasure: it deletes those bytes from the blob
store (`forget_blob`, server/blobs.py: unless a live attachment elsewhere holds the same
bytes) and empties `erasures.blobs`, then has the engine give back the space the rows
took (`db.reclaim`) and notes it in `erasures.reclaimed_at`. The rows are gone at the
commit; if the process stops before `reclaim` is done (bytes still in the store, space
not given back), `reclaim_pending` (the retention job, every start of it and every hour)
finishes it from what the row says.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import blobs, db
from server.core.actor import Actor
from server.core.erased import is_erased
from server.core.fields import CHILD_TABLES, SHA256, SPECS
from server.core.rows import IN_CHUNK, WIRE_ROWS, chunks, record_from_row
from server.core.writer import Edit, Source, Writer, writing
from server.errors import ApiError
from sync.engine import StoredRecord
from sync.protocol import MutationResult, Rejected

log = logging.getLogger("fieldcrm.privacy")

ERASABLE = ("accounts", "contacts")
# What the stored result of a refused write about an erased record says instead.
ERASED_RESULT = "This write was about a record since erased on request."
# Values shorter than this are not looked for in the import log's sentences: "Lyon" is
# in many of them, and a sentence is only kept if it names none of the erased values.
_SHORTEST = 3
_json = msgspec.json.Encoder()
_result = msgspec.json.Decoder(MutationResult)


@dataclass(frozen=True)
class Erased:
    erasure_id: str
    table: str
    record_id: str
    erased_at: datetime
    erased_by: str
    records: int
    reclaimed: bool


def _noun(table: str) -> str:
    return table[:-1]


async def erasure_of(record_id: str) -> dict[str, Any] | None:
    """The erasure that took this id (the record itself or something that hung off it)."""
    rows = await db.fetch(
        "SELECT e.id, e.record_table, e.record_id, e.erased_at, e.erased_by, e.reclaimed_at"
        " FROM erased_records r JOIN erasures e ON e.id = r.erasure_id WHERE r.record_id = {}",
        record_id,
    )
    return rows[0] if rows else None


async def erase(actor: Actor, table: str, record_id: str) -> Erased:
    """Erase the record `record_id` of `table` (accounts or contacts) and what hangs off it
    as `actor` (an admin: the caller checks), then reclaim the space. Raises ApiError 404
    when there is no such record, 409 when it was erased already."""
    erased_at = datetime.now(UTC)
    async with writing(Source.ERASE) as writer:
        erasure_id, ids = await _erase_in(writer, actor, table, record_id, erased_at)
    WIRE_ROWS.forget(ids)
    try:
        reclaimed = await reclaim(erasure_id)
    except Exception:  # the erasure stands; reclaim_pending finishes it
        log.exception("erasure %s: reclaiming the space failed; it is tried again", erasure_id)
        reclaimed = False
    return Erased(erasure_id, table, record_id, erased_at, actor.user_id, len(ids), reclaimed)


async def _erase_in(
    writer: Writer, actor: Actor, table: str, record_id: str, erased_at: datetime
) -> tuple[str, list[str]]:
    record = await writer.load(table, record_id)
    if is_erased(record):
        found = await erasure_of(record_id)
        on = f" on {found['erased_at']:%Y-%m-%d}" if found else ""
        raise ApiError(409, "already_erased", f"This {_noun(table)} was erased already{on}.")
    if record is None:
        raise ApiError(404, "not_found", f"There is no {_noun(table)} with this id.")
    if not record.deleted:
        try:
            await writer.apply(actor, Edit(table, record_id, op="delete"))
        except Rejected as rejected:
            raise ApiError(403, rejected.error, rejected.detail) from None
    records = await _hanging_off(table, record_id)
    ids = [r.id for r in records]
    values = _values_of(records)
    refused = await _rows_about("rejections", ids, table, record_id)
    conflicts = await _rows_about("conflicts", ids, table, record_id)
    gone = [*records, *conflicts, *refused]
    await writer.session.expunge(gone, actor.user_id, erase=True)
    touched = {r.table for r in gone} | {"history"}
    touched |= await _forget_elsewhere(ids, refused, values)
    erasure_id = str(uuid.uuid4())
    # The photos' and voice notes' bytes (SPEC section 12): deleted from the blob store
    # after the commit, by `reclaim`; their rows in attachment_blobs go then too.
    blobs = sorted({str(r.values["sha256"]) for r in records if r.table == "attachments"})
    if blobs:
        touched |= {"attachment_blobs", "erasures"}
    await db.insert_rows(
        "erasures",
        (
            "id",
            "record_table",
            "record_id",
            "erased_at",
            "erased_by",
            "records",
            "tables",
            "blobs",
        ),
        [
            [
                erasure_id,
                table,
                record_id,
                erased_at,
                actor.user_id or None,
                len(gone),
                _json.encode(sorted(touched)).decode(),
                _json.encode(blobs).decode(),
            ]
        ],
    )
    await db.insert_rows(
        "erased_records",
        ("record_id", "record_table", "erasure_id"),
        [[r.id, r.table, erasure_id] for r in gone],
    )
    if not db.is_postgres():
        await _merge_search_indexes(sorted({r.table for r in gone}))
    return erasure_id, [r.id for r in gone]


async def _hanging_off(table: str, record_id: str) -> list[StoredRecord]:
    """The record and, for an account, every row that hangs off it, deleted ones too."""
    rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", record_id)
    records = [record_from_row(table, row) for row in rows]
    if table == "accounts":
        for child in CHILD_TABLES:
            rows = await db.fetch(f"SELECT * FROM {child} WHERE account_id = {{}}", record_id)
            records += [record_from_row(child, row) for row in rows]
    return records


async def _rows_about(
    table: str, ids: Sequence[str], erased_table: str, erased_id: str
) -> list[StoredRecord]:
    """The conflicts or refused writes about these records (by the record they name, or,
    for an account, by the account they hang off)."""
    found: dict[str, StoredRecord] = {}
    for chunk in chunks(ids, IN_CHUNK):
        where, args = db.any_of("record_id", chunk)
        for row in await db.fetch(f"SELECT * FROM {table} WHERE {where}", *args):
            record = record_from_row(table, row)
            found[record.id] = record
    if erased_table == "accounts":
        for row in await db.fetch(f"SELECT * FROM {table} WHERE account_id = {{}}", erased_id):
            record = record_from_row(table, row)
            found[record.id] = record
    return list(found.values())


def _values_of(records: Sequence[StoredRecord]) -> list[str]:
    """The erased records' text values, longest first: what the import log's sentences are
    searched for."""
    values: set[str] = set()
    for record in records:
        specs = SPECS[record.table]
        for name, value in record.values.items():
            spec = specs.get(name)
            if spec is not None and spec.kind == "text" and isinstance(value, str):
                if len(value.strip()) >= _SHORTEST:
                    values.add(value.strip())
    return sorted(values, key=len, reverse=True)


async def _forget_elsewhere(
    ids: Sequence[str], refused: Sequence[StoredRecord], values: Sequence[str]
) -> set[str]:
    """What other parts of the server keep of the erased records goes too; the tables
    touched."""
    touched: set[str] = set()
    for chunk in chunks(ids, IN_CHUNK):
        for table, column in (
            ("import_items", "record_id"),
            ("push_deliveries", "task_id"),
            ("geocoding_attempts", "account_id"),
            ("scope_moves", "record_id"),
        ):
            where, args = db.any_of(column, chunk)
            if await db.fetch(f"DELETE FROM {table} WHERE {where} RETURNING {column}", *args):
                touched.add(table)
    for rejection in refused:
        if await _quiet_result(rejection):
            touched.add("sync_results")
    if await _scrub_import_log(set(ids), values):
        touched.add("imports")
    return touched


async def _quiet_result(rejection: StoredRecord) -> bool:
    """The stored result of a refused write (answered again on a replay) keeps its code
    and says no more than that its record was erased: its sentence may name the account."""
    found = await db.fetch(
        "SELECT id, result FROM sync_results WHERE user_id = {} AND client_id = {} AND mid = {}",
        rejection.values["user_id"],
        rejection.values["client_id"],
        int(rejection.values["mid"]),
    )
    for row in found:
        result = _result.decode(row["result"])
        if result.error is not None:
            result.error.detail = ERASED_RESULT
        await db.fetch(
            "UPDATE sync_results SET result = {} WHERE id = {}",
            _json.encode(result).decode(),
            row["id"],
        )
    return bool(found)


async def _scrub_import_log(ids: set[str], values: Sequence[str]) -> bool:
    """Imports keep lines about rows (the refused ones' sentences, which may quote a value;
    the first rows as read, in `preview`; the records a revert left in place, by id and
    name): every line of every list in them that is about the erased records goes."""
    changed = False
    rows = await db.fetch("SELECT id, report, reverted FROM imports")
    for row in rows:
        report = msgspec.json.decode(row["report"] or "{}")
        reverted = msgspec.json.decode(row["reverted"] or "{}")
        scrubbed = [_scrub_lists(part, ids, values) for part in (report, reverted)]
        if not any(scrubbed):
            continue
        await db.fetch(
            "UPDATE imports SET report = {}, reverted = {} WHERE id = {}",
            _json.encode(report).decode(),
            _json.encode(reverted).decode(),
            row["id"],
        )
        changed = True
    return changed


def _scrub_lists(part: Any, ids: set[str], values: Sequence[str]) -> bool:
    """Drop the items about the erased records from each list `part` (a dict) holds; whether
    any went."""
    if not isinstance(part, dict):
        return False
    changed = False
    for key, items in part.items():
        if not isinstance(items, list):
            continue
        left = [item for item in items if not _mentions(item, ids, values)]
        if len(left) != len(items):
            part[key] = left
            changed = True
    return changed


def _mentions(item: Any, ids: set[str], values: Sequence[str]) -> bool:
    text = _json.encode(item).decode()
    return any(i in text for i in ids) or any(
        _json.encode(v).decode()[1:-1] in text for v in values
    )


async def _merge_search_indexes(tables: Sequence[str]) -> None:
    """SQLite's FTS5 indexes keep a deleted row's words in their older segments (a delete
    adds a marker) until segments are merged: merge each touched table's into one."""
    for table in tables:
        index = f"{table}_search"
        if await db.fetch("SELECT name FROM sqlite_master WHERE name = {}", index):
            await db.fetch(f"INSERT INTO {index}({index}) VALUES ('optimize')")


async def reclaim(erasure_id: str) -> bool:
    """Finish the erasure after its commit: delete its attachments' bytes from the blob
    store (`forget_blob`) and forget their hashes, then have the engine give back the
    space of what it deleted (db.reclaim), then note it. Each step may be run again: raises
    if one could not be done (`reclaim_pending` tries again)."""
    rows = await db.fetch(
        "SELECT tables, blobs FROM erasures WHERE id = {} AND reclaimed_at IS NULL", erasure_id
    )
    if not rows:
        return True
    hashes = msgspec.json.decode(rows[0]["blobs"] or "[]")
    if hashes:
        for sha256 in hashes:
            await forget_blob(str(sha256))
        async with db.write_transaction():
            await db.fetch("UPDATE erasures SET blobs = {} WHERE id = {}", "[]", erasure_id)
    tables = sorted(msgspec.json.decode(rows[0]["tables"] or "[]"))
    await db.reclaim(tables)
    await db.fetch(
        "UPDATE erasures SET reclaimed_at = {} WHERE id = {}", datetime.now(UTC), erasure_id
    )
    return True


async def reclaim_pending() -> int:
    """Finish the erasures whose `reclaim` was not done (the process stopped after their
    commit, or a step failed): their bytes deleted, their space given back; how many."""
    rows = await db.fetch(
        "SELECT id FROM erasures WHERE reclaimed_at IS NULL ORDER BY erased_at LIMIT 100"
    )
    done = 0
    for row in rows:  # one that fails again does not hold up the others
        try:
            done += await reclaim(str(row["id"]))
        except Exception:
            log.exception("erasure %s: finishing it failed; it is tried again", row["id"])
    return done


async def forget_blob(sha256: str) -> bool:
    """Delete the bytes of `sha256` unless a live attachment row still names them (call it
    once the erased rows are deleted). Whether they were deleted. The bytes go from the
    store after the database forgets them, so a failure leaves bytes nobody can fetch,
    never a row that names missing bytes."""
    if not SHA256.fullmatch(sha256):
        return False
    async with db.write_transaction():
        live = await db.fetch(
            "SELECT id FROM attachments WHERE sha256 = {} AND deleted = {} LIMIT 1", sha256, False
        )
        if live:
            return False
        await db.fetch("DELETE FROM attachment_blobs WHERE sha256 = {}", sha256)
    await blobs.delete(sha256)
    return True
