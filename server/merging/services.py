"""Merging records into one, and undoing it (SPEC section 9, rule 13; docs/merge.md).

A merge goes through the one writer (source `merge`) in batches, each its own write
transaction of about BATCH_MS, so the writer's lock is never held long:
1. what hangs off each merged account moves to the survivor, a batch at a time: its
   contacts, visits, notes, tasks and deals through the CRM's rules, the conflicts about
   them re-pointed; with the last batch, the conflicts and rejections about the accounts;
2. with the last batch, the survivor takes the values `fields` names (one write: its
   history entry is a `merge` that names the merged records, even when no value changed),
3. and each merged record is deleted, merged into the survivor: devices get the delete
   with `merged_into`, and a later write to it lands on the survivor (rule 13);
4. the merge log (merges, merge_items) keeps what each write did and the seq it got, in
   the transaction of the batch that did it. `merges.running` says batches are left; a
   merge cut short by a stop is finished by `resume_merges`. A merge of one batch is one
   transaction, all or nothing.

Undo: its first transaction brings the merged records back; then, in batches, what was
moved from them goes back unless it was moved or changed since (its `account_id` no longer
the merge's write); with the last, the survivor's fields the merge filled get their old
values back unless written since. What stays is listed. What was written since the merge
stays where it was written (a visit added to a merged-away account, which landed on the
survivor, stays there).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.auth.services import actor_for_user
from server.core.actor import SYSTEM, Actor
from server.core.fields import CHILD_TABLES, MERGEABLE, SERVER, SERVER_MADE, TABLE_FIELDS
from server.core.writer import Edit, Source, Writer, writing
from server.errors import REJECTION_STATUS, ApiError
from server.merging.schemas import Kept, MergeAnswer, MergeRequest, UndoAnswer
from sync.engine import StoredRecord
from sync.protocol import Rejected

log = logging.getLogger("fieldcrm.merge")

MAX_MERGED = 20  # records merged into one survivor at once
# Records moved by one merge. It moves them in batches, each a write transaction of about
# BATCH_MS before its commit (a record costs 0.5-1.5 ms: bench/merge.py; the size follows
# the pace of the batch before), so the writer's lock is never held long; the cap is that
# of an import (SPEC section 8), and bounds the merge log and a merge's time.
MAX_MOVED = 50_000
BATCH_MS = 25.0
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 25, 5, 1_000
# The fields whose winner a merge may name: what people write, but the team (the records
# of a merge are all in one team).
CHOOSABLE = {
    table: frozenset(s.name for s in TABLE_FIELDS[table] if s.writer != SERVER) - {"team_id"}
    for table in MERGEABLE
}
PAIRED = ("lat", "lng")  # a position is taken whole, from one record
_json = msgspec.json.Encoder()
ITEM_COLUMNS = ("merge_id", "record_table", "record_id", "kind", "from_id", "fields", "seq")


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise ApiError(422, "invalid", f"{what} must be a UUID, not {value[:60]!r}.") from None


def _noun(table: str) -> str:
    return table[:-1]


def _check_request(actor: Actor, request: MergeRequest) -> tuple[str, list[str], dict[str, str]]:
    """The request's ids and fields, checked before anything is read: (survivor, merged
    ids, field -> winner id)."""
    table = request.table
    if table not in MERGEABLE:
        raise ApiError(422, "invalid", "Merge accounts or contacts.")
    if table == "accounts" and not actor.is_manager:
        raise ApiError(403, "forbidden", "Only a manager or an admin may merge accounts.")
    if not request.merged_ids:
        raise ApiError(422, "invalid", "Name at least one record in merged_ids.")
    if len(request.merged_ids) > MAX_MERGED:
        raise ApiError(422, "invalid", f"Merge at most {MAX_MERGED} records at once.")
    survivor = _uuid(request.survivor_id, "survivor_id")
    merged = [_uuid(value, "merged_ids[]") for value in request.merged_ids]
    if len(set(merged)) != len(merged):
        raise ApiError(422, "invalid", "merged_ids names a record twice.")
    if survivor in merged:
        raise ApiError(422, "invalid", "The survivor cannot be one of the merged records.")
    fields: dict[str, str] = {}
    for name, winner in request.fields.items():
        if name not in CHOOSABLE[table]:
            raise ApiError(
                422, "invalid", f"{str(name)[:50]!r} is not a field of {table} a merge can choose."
            )
        winner_id = _uuid(winner, f"fields.{name}")
        if winner_id != survivor and winner_id not in merged:
            raise ApiError(
                422, "invalid", f"fields.{name} must name the survivor or a merged record."
            )
        fields[name] = winner_id
    taken = {fields[name] for name in PAIRED if name in fields}
    if len(taken) > 1:
        raise ApiError(422, "invalid", "lat and lng must come from the same record.")
    for name in PAIRED:
        if taken:
            fields[name] = next(iter(taken))
    return survivor, merged, fields


async def _live(writer: Writer, actor: Actor, table: str, record_id: str) -> StoredRecord:
    """A record of the merge as it is in the transaction: seen by `actor` and live."""
    record = await writer.load(table, record_id)
    if record is None or not actor.sees(record.scope):
        raise ApiError(404, "not_found", f"There is no {_noun(table)} {record_id} you can see.")
    if record.deleted:
        merged = await writer.merged_into(record_id)
        if merged is not None:
            raise ApiError(
                409,
                "merged",
                f"The {_noun(table)} {record_id} was merged into {merged[0]} already.",
                merge_id=merged[1],
            )
        raise ApiError(409, "deleted", f"The {_noun(table)} {record_id} was deleted.")
    return record


def _wire(value: Any) -> Any:
    """A stored value as a client writes it."""
    return msgspec.to_builtins(value)


@dataclass
class _Merge:
    """A merge as its batches need it: what was asked, by whom, and what it came to."""

    merge_id: str
    table: str
    survivor_id: str
    merged_ids: list[str]
    fields: dict[str, str]
    actor: Actor
    now_ms: int | None = None
    winners: list[str] = field(default_factory=list)  # the fields the survivor took
    running: bool = True  # batches are left to run


def next_batch(size: int, took_ms: float) -> int:
    """How many records the next write transaction moves: what fits BATCH_MS at the pace
    just measured, within bounds."""
    return max(MIN_BATCH, min(MAX_BATCH, round(BATCH_MS * size / max(took_ms, 0.1))))


async def merge(
    actor: Actor, request: MergeRequest, now_ms: int | None = None, *, batch: int | None = None
) -> MergeAnswer:
    """Merge `request.merged_ids` into `request.survivor_id` (see the module's docstring).
    `now_ms`: the server's time for it (tests fix it); by default the wall clock. `batch`:
    records moved per write transaction (by default as many as take about BATCH_MS)."""
    job = await start(actor, request, now_ms, batch=batch)
    if job.running:
        await _to_the_end(run(job, batch))
    return await _answer(job)


_going_on: set[asyncio.Task[None]] = set()  # the batches of merges and undos under way


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Run a merge's or an undo's batches to their end even if the request that waits for
    them is cancelled (its client gave up waiting): otherwise the merge would stay half
    done, its records refused to other merges, until the server starts again."""
    task = asyncio.ensure_future(work)
    _going_on.add(task)
    task.add_done_callback(_ended)
    await asyncio.shield(task)


def _ended(task: asyncio.Task[None]) -> None:
    _going_on.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.info("a merge or an undo ended refused: %s", task.exception())


async def _answer(job: _Merge) -> MergeAnswer:
    rows = await db.fetch(
        "SELECT record_table, COUNT(*) AS n FROM merge_items WHERE merge_id = {} AND kind = {}"
        " GROUP BY record_table",
        job.merge_id,
        "moved",
    )
    moved = {str(row["record_table"]): int(row["n"]) for row in rows}
    return MergeAnswer(
        merge_id=job.merge_id,
        survivor_id=job.survivor_id,
        merged_ids=job.merged_ids,
        fields=job.winners,
        moved=dict(sorted(moved.items())),
    )


def _rejected(rejected: Rejected) -> ApiError:
    return ApiError(REJECTION_STATUS.get(rejected.error, 422), rejected.error, rejected.detail)


async def start(
    actor: Actor, request: MergeRequest, now_ms: int | None = None, *, batch: int | None = None
) -> _Merge:
    """The merge's first write transaction: the request and the records checked, the merge
    logged as running, its first batch moved. A merge that fits one batch is done in it
    (`running` false); else `run` does the rest (or, if the process stops first,
    `resume_merges`)."""
    survivor_id, merged_ids, fields = _check_request(actor, request)
    job = _Merge(str(uuid.uuid4()), request.table, survivor_id, merged_ids, fields, actor, now_ms)
    try:
        async with writing(Source.MERGE, now_ms=job.now_ms) as writer:
            survivor, merged = await _records(writer, job)
            await _not_merging(job)
            await _within_cap(merged)
            await db.insert_rows(
                "merges",
                ("id", "record_table", "survivor_id", "merged_ids", "fields", "user_id",
                 "created_at", "running"),
                [[job.merge_id, job.table, job.survivor_id, _json.encode(job.merged_ids).decode(),
                  _json.encode(job.fields).decode(), job.actor.user_id or None,
                  datetime.now(UTC), True]],
            )  # fmt: skip
            job.running = not await _batch(writer, job, survivor, merged, batch or FIRST_BATCH)
    except Rejected as rejected:
        raise _rejected(rejected) from None
    return job


async def run(job: _Merge, batch: int | None = None, *, batches: int | None = None) -> None:
    """The merge's next batches, each its own write transaction, until its last one has
    merged the records away (or, with `batches`, that many: a test stops a merge half-way
    as a stopped process would). When a record of it went away or changed team between two
    batches, what moved is put back and the merge ends refused, as it would have been at its
    start."""
    size = batch or FIRST_BATCH
    while job.running and batches != 0:
        await asyncio.sleep(0)  # whoever waits for the writer goes first
        failure: ApiError | None = None
        took_ms = 0.0
        try:
            async with writing(Source.MERGE, now_ms=job.now_ms) as writer:
                began = time.perf_counter()
                state = await db.fetch(
                    "SELECT running, undone_at FROM merges WHERE id = {}", job.merge_id
                )
                if state and state[0]["undone_at"] is not None:
                    raise ApiError(409, "undone", "This merge was undone while it ran.")
                if not state or not state[0]["running"]:
                    job.running = False  # finished by another runner
                    return
                try:
                    survivor, merged = await _records(writer, job)
                except ApiError as refused:
                    failure = refused
                else:
                    job.running = not await _batch(writer, job, survivor, merged, size)
                    await writer.flush()
                    took_ms = (time.perf_counter() - began) * 1000  # its turn, but the commit
        except Rejected as rejected:
            raise _rejected(rejected) from None
        if failure is not None:
            await _abandon(job)
            raise failure
        if batches is not None:
            batches -= 1
        if batch is None:
            size = next_batch(size, took_ms)


async def _records(writer: Writer, job: _Merge) -> tuple[StoredRecord, list[StoredRecord]]:
    """The survivor and the merged records as they are now: all live, seen by the merge's
    author, in one team."""
    survivor = await _live(writer, job.actor, job.table, job.survivor_id)
    merged = [await _live(writer, job.actor, job.table, record_id) for record_id in job.merged_ids]
    if any(record.scope != survivor.scope for record in merged):
        raise ApiError(422, "different_teams", f"The {job.table} to merge must all be in one team.")
    return survivor, merged


async def _not_merging(job: _Merge) -> None:
    """Refuse records that a merge still running (or being undone) takes part in."""
    rows = await db.fetch(
        "SELECT id, survivor_id, merged_ids FROM merges WHERE running = {} OR undoing = {}",
        True,
        True,
    )
    mine = {job.survivor_id, *job.merged_ids}
    for row in rows:
        theirs = {str(row["survivor_id"]), *msgspec.json.decode(row["merged_ids"])}
        if mine & theirs:
            raise ApiError(
                409,
                "merging",
                "These records take part in a merge that is still running: try again when"
                " it has ended.",
                merge_id=str(row["id"]),
            )


async def _within_cap(merged: list[StoredRecord]) -> None:
    """Refuse a merge that would move more than MAX_MOVED records (413)."""
    if merged[0].table != "accounts":
        return
    ids = [record.id for record in merged]
    marks = ", ".join("{}" for _ in ids)
    counted = 0
    for table in (*CHILD_TABLES, *SERVER_MADE):
        live = " AND deleted = {}" if table in CHILD_TABLES else ""
        args = [*ids, False] if live else ids
        rows = await db.fetch(
            f"SELECT COUNT(*) AS n FROM {table} WHERE account_id IN ({marks}){live}", *args
        )
        counted += int(rows[0]["n"])
    if counted > MAX_MOVED:
        raise ApiError(
            413,
            "too_large",
            f"This merge would move {counted} records; at most {MAX_MOVED} move at once.",
        )


async def _batch(
    writer: Writer, job: _Merge, survivor: StoredRecord, merged: list[StoredRecord], size: int
) -> bool:
    """One batch of the merge, in `writer`'s transaction: up to `size` records moved to
    the survivor; if none are left after them, the merge's end (the survivor takes its
    values, the merged records are merged away, the merge is no longer running): True."""
    items: list[list[Any]] = []
    left = False
    if job.table == "accounts":
        left = await _move_children(writer, job, merged, items, size)
    if not left:
        await _finish(writer, job, survivor, merged, items)
    await db.insert_rows("merge_items", ITEM_COLUMNS, items)
    return not left


async def _finish(
    writer: Writer,
    job: _Merge,
    survivor: StoredRecord,
    merged: list[StoredRecord],
    items: list[list[Any]],
) -> None:
    """The merge's end: the survivor takes the chosen values, each merged record is merged
    away, the merge is no longer running."""
    by_id = {record.id: record for record in merged}
    winners = {
        name: _wire(by_id[winner].values.get(name))
        for name, winner in sorted(job.fields.items())
        if winner != job.survivor_id and by_id[winner].values.get(name) != survivor.values.get(name)
    }
    before = {name: _wire(survivor.values.get(name)) for name in winners}
    label = {"merged": {"old": None, "new": job.merged_ids}}
    await writer.apply(job.actor, Edit(job.table, job.survivor_id, winners), label=label)
    if winners:
        after = await writer.load(job.table, job.survivor_id)
        assert after is not None
        seq = max(after.stamps[name].seq for name in winners)
        items.append(_item(job.merge_id, job.table, job.survivor_id, "filled", None, before, seq))
    for record_id in job.merged_ids:
        await writer.merge_away(job.actor, job.table, record_id, job.survivor_id, job.merge_id)
        gone = await writer.load(job.table, record_id)
        assert gone is not None
        items.append(_item(job.merge_id, job.table, record_id, "merged", None, {}, gone.seq))
    await db.fetch("UPDATE merges SET running = {} WHERE id = {}", False, job.merge_id)
    job.winners = sorted(winners)


def _item(
    merge_id: str,
    table: str,
    record_id: str,
    kind: str,
    from_id: str | None,
    fields: dict[str, Any],
    seq: int,
) -> list[Any]:
    return [merge_id, table, record_id, kind, from_id, _json.encode(fields).decode(), seq]


async def _move_children(
    writer: Writer, job: _Merge, merged: list[StoredRecord], items: list[list[Any]], size: int
) -> bool:
    """Up to `size` live records that hang off the merged accounts now hang off the
    survivor, with the conflicts about them; once none is left, also the conflicts about
    the merged accounts themselves and the refused writes about them. True if records are
    left for another batch. (A deleted record's conflicts stay with it.)"""
    found: list[tuple[str, str, str]] = []  # (table, id, the merged account it left)
    for account in merged:
        for table in CHILD_TABLES:
            if len(found) > size:
                break
            rows = await db.fetch(
                # Any of them (those moved leave the set): no ORDER BY, which would sort
                # every record left on the account at each batch.
                f"SELECT id FROM {table} WHERE account_id = {{}} AND deleted = {{}} LIMIT {{}}",
                account.id,
                False,
                size + 1 - len(found),
            )
            found += [(table, str(row["id"]), account.id) for row in rows]
    left = len(found) > size
    found = found[:size]
    moving = {record_id for _, record_id, _ in found}
    if not left:
        moving |= {account.id for account in merged}
    server_made: list[tuple[str, str, str]] = []
    for account in merged:
        for table in SERVER_MADE:
            rows = await db.fetch(
                f"SELECT id, record_id FROM {table} WHERE account_id = {{}} ORDER BY id",
                account.id,
            )
            server_made += [
                (table, str(row["id"]), account.id)
                for row in rows
                if str(row["record_id"]) in moving or (table == "rejections" and not left)
            ]
    survivor_id = job.survivor_id
    edits = [Edit(table, record_id, {"account_id": survivor_id}) for table, record_id, _ in found]
    writer.gather_last_visits()
    await writer.apply_all(job.actor, edits)
    await writer.settle_last_visits()
    for table, record_id, from_id in found:
        record = await writer.load(table, record_id)
        assert record is not None
        seq = record.stamps["account_id"].seq
        items.append(_item(job.merge_id, table, record_id, "moved", from_id, {}, seq))
    for table, record_id, from_id in server_made:
        await writer.set_account(table, record_id, survivor_id)
        items.append(_item(job.merge_id, table, record_id, "moved", from_id, {}, 0))
    return left


# -- undo -----------------------------------------------------------------------------


@dataclass
class _Undo:
    """An undo as its batches need it, and what it has done so far."""

    merge_id: str
    actor: Actor
    now_ms: int | None = None
    kept: list[Kept] = field(default_factory=list)
    moved_back: Counter[str] = field(default_factory=Counter)
    restored_fields: list[str] = field(default_factory=list)  # the survivor's, given back
    undoing: bool = True


async def undo(
    actor: Actor,
    merge_id_text: str,
    now_ms: int | None = None,
    *,
    batch: int | None = None,
    batches: int | None = None,
) -> UndoAnswer:
    """Undo a merge (see the module's docstring): its first write transaction brings the
    merged records back, then what the merge moved goes back in batches (`batch` records
    each, by default as many as take about BATCH_MS; with `batches`, only that many after
    the first, as a stopped process would leave it); with the last, the survivor gets back
    the fields the merge filled. A merge still running stops, and what it moved so far
    goes back."""
    try:
        merge_id = str(uuid.UUID(merge_id_text))
    except ValueError:
        raise ApiError(404, "not_found", "There is no merge with this id.") from None
    job = _Undo(merge_id, actor, now_ms)
    size = batch or FIRST_BATCH
    try:
        async with writing(Source.MERGE, now_ms=now_ms) as writer:
            rows = await db.fetch("SELECT * FROM merges WHERE id = {}", merge_id)
            if not rows:
                raise ApiError(404, "not_found", "There is no merge with this id.")
            found = rows[0]
            table = found["record_table"]
            survivor_id = str(found["survivor_id"])
            merged_ids = [str(i) for i in msgspec.json.decode(found["merged_ids"])]
            survivor = await writer.load(table, survivor_id)
            merged = [await writer.load(table, record_id) for record_id in merged_ids]
            records = [survivor, *merged]
            if any(r is None or not actor.sees(r.scope) for r in records):
                raise ApiError(404, "not_found", "There is no merge with this id.")
            if table == "accounts" and not actor.is_manager:
                raise ApiError(403, "forbidden", "Only a manager or an admin may undo this merge.")
            if found["undone_at"] is not None:
                raise ApiError(409, "undone", "This merge was undone already.")
            assert survivor is not None
            if not found["running"]:
                if survivor.deleted:
                    later = await writer.merged_into(survivor_id)
                    detail = (
                        f"The survivor was merged into {later[0]} since: undo that merge first."
                        if later is not None
                        else "The survivor was deleted since; this merge cannot be undone."
                    )
                    raise ApiError(409, "survivor_gone", detail)
                for record_id in merged_ids:
                    await writer.bring_back(actor, table, record_id)
            await _mark_undone(job)
            await _undo_batch(writer, job, size)
    except Rejected as rejected:
        raise _rejected(rejected) from None
    await _to_the_end(_undo_rest(job, batch, batches=batches))
    return UndoAnswer(
        merge_id=merge_id,
        restored=merged_ids,
        fields=job.restored_fields,
        moved_back=dict(sorted(job.moved_back.items())),
        kept=job.kept,
    )


async def _mark_undone(job: _Undo) -> None:
    """The merge is undone from now on (a second undo is refused, a run of it stops); what
    it moved is still going back while `undoing`."""
    await db.fetch(
        "UPDATE merges SET undone_at = {}, undone_by = {}, running = {}, undoing = {}"
        " WHERE id = {}",
        datetime.now(UTC),
        job.actor.user_id or None,
        False,
        True,
        job.merge_id,
    )


async def _give_fields_back(writer: Writer, job: _Undo, table: str, survivor_id: str) -> None:
    """The survivor's fields the merge filled get their old values back, unless written
    since (kept); its history entry says the merge was undone. Nothing for a merge undone
    while it ran: the survivor took nothing yet."""
    finished = await db.fetch(
        "SELECT id FROM merge_items WHERE merge_id = {} AND kind = {} LIMIT 1",
        job.merge_id,
        "merged",
    )
    if not finished:
        return
    label = {"merged": {"old": await _merged_ids(job.merge_id), "new": None}}
    restore: dict[str, Any] = {}
    current = await writer.load(table, survivor_id)
    assert current is not None
    filled = await db.fetch(
        "SELECT fields, seq FROM merge_items WHERE merge_id = {} AND kind = {}",
        job.merge_id,
        "filled",
    )
    for item in filled:
        for name, value in msgspec.json.decode(item["fields"]).items():
            if current.stamps[name].seq == int(item["seq"]):
                restore[name] = value
            else:
                reason = f"its {name} was changed since the merge"
                job.kept.append(Kept(table=table, id=survivor_id, reason=reason))
    try:
        await writer.apply(job.actor, Edit(table, survivor_id, restore), label=label)
    except Rejected as rejected:  # the survivor was deleted while the undo ran
        job.kept.append(Kept(table=table, id=survivor_id, reason=rejected.detail))
        return
    job.restored_fields = sorted(restore)


async def _merged_ids(merge_id: str) -> list[str]:
    rows = await db.fetch("SELECT merged_ids FROM merges WHERE id = {}", merge_id)
    return [str(i) for i in msgspec.json.decode(rows[0]["merged_ids"])]


async def _undo_batch(writer: Writer, job: _Undo, size: int) -> None:
    """Up to `size` of what the merge moved go back (in the order they moved), in
    `writer`'s transaction, and the merge notes how far its undo got; with the last, the
    survivor gets its fields back, and the merge is no longer `undoing`."""
    rows = await db.fetch(
        "SELECT record_table, undoing, undo_cursor, survivor_id FROM merges WHERE id = {}",
        job.merge_id,
    )
    if not rows or not rows[0]["undoing"]:
        job.undoing = False  # done by another runner
        return
    survivor_id = str(rows[0]["survivor_id"])
    items = await db.fetch(
        "SELECT id, record_table, record_id, kind, from_id, fields, seq FROM merge_items"
        " WHERE merge_id = {} AND kind = {} AND id > {} ORDER BY id LIMIT {}",
        job.merge_id,
        "moved",
        int(rows[0]["undo_cursor"]),
        size + 1,
    )
    job.undoing = len(items) > size
    items = items[:size]
    await writer.prefetch([Edit(item["record_table"], str(item["record_id"])) for item in items])
    writer.gather_last_visits()
    for item in items:
        await _move_back(writer, job, item, survivor_id)
    await writer.settle_last_visits()
    if not job.undoing:
        await _give_fields_back(writer, job, str(rows[0]["record_table"]), survivor_id)
    cursor = int(items[-1]["id"]) if items else int(rows[0]["undo_cursor"])
    await db.fetch(
        "UPDATE merges SET undo_cursor = {}, undoing = {} WHERE id = {}",
        cursor,
        job.undoing,
        job.merge_id,
    )


async def _undo_rest(job: _Undo, batch: int | None, *, batches: int | None = None) -> None:
    """The undo's next batches, each its own write transaction, until all is back (or, with
    `batches`, that many)."""
    size = batch or FIRST_BATCH
    while job.undoing and batches != 0:
        await asyncio.sleep(0)  # whoever waits for the writer goes first
        try:
            async with writing(Source.MERGE, now_ms=job.now_ms) as writer:
                began = time.perf_counter()
                await _undo_batch(writer, job, size)
                await writer.flush()
                took_ms = (time.perf_counter() - began) * 1000  # its turn, but the commit
        except Rejected as rejected:
            raise _rejected(rejected) from None
        if batches is not None:
            batches -= 1
        if batch is None:
            size = next_batch(size, took_ms)


async def _abandon(job: _Merge) -> None:
    """A running merge that cannot go on: it ends undone, what it moved put back."""
    undoing = _Undo(job.merge_id, job.actor, job.now_ms)
    async with writing(Source.MERGE, now_ms=job.now_ms) as writer:
        await _mark_undone(undoing)
        await _undo_batch(writer, undoing, FIRST_BATCH)
    await _undo_rest(undoing, None)


async def _move_back(writer: Writer, job: _Undo, item: dict[str, Any], survivor_id: str) -> None:
    """One record the merge moved to the survivor goes back to the account it left, unless
    it was moved or deleted since, or may not go back (listed in `kept`)."""
    table, record_id, from_id = item["record_table"], str(item["record_id"]), str(item["from_id"])
    record = await writer.load(table, record_id)
    if record is None:
        return
    if table in SERVER_MADE:
        if record.values.get("account_id") == survivor_id:
            await writer.set_account(table, record_id, from_id)
            job.moved_back[table] += 1
        return
    stamp = record.stamps.get("account_id")
    if record.deleted:
        job.kept.append(Kept(table=table, id=record_id, reason="deleted since the merge"))
    elif (
        record.values.get("account_id") != survivor_id
        or stamp is None
        or (stamp.seq != int(item["seq"]))
    ):
        job.kept.append(Kept(table=table, id=record_id, reason="moved since the merge"))
    else:
        try:
            await writer.apply(job.actor, Edit(table, record_id, {"account_id": from_id}))
        except Rejected as rejected:
            job.kept.append(Kept(table=table, id=record_id, reason=rejected.detail))
        else:
            job.moved_back[table] += 1
            # The conflicts about it made since the merge name the survivor: they go back
            # with it (those the merge moved would go back as items of their own).
            for row in await db.fetch(
                "SELECT id FROM conflicts WHERE record_id = {} AND account_id = {} ORDER BY id",
                record_id,
                survivor_id,
            ):
                await writer.set_account("conflicts", str(row["id"]), from_id)
                job.moved_back["conflicts"] += 1


# -- a merge or an undo cut short ----------------------------------------------------


async def resume_merges() -> int:
    """Finish the merges and undos that a stopped process left half-way (run when the
    background jobs start): a merge goes on where it stopped, an undo too. How many."""
    rows = await db.fetch(
        "SELECT * FROM merges WHERE running = {} OR undoing = {} ORDER BY created_at",
        True,
        True,
    )
    for row in rows:
        merge_id = str(row["id"])
        if row["undoing"]:
            actor = await _actor(row["undone_by"])
            await _undo_rest(_Undo(merge_id, actor), None)
            continue
        job = _Merge(
            merge_id,
            str(row["record_table"]),
            str(row["survivor_id"]),
            [str(i) for i in msgspec.json.decode(row["merged_ids"])],
            {str(k): str(v) for k, v in msgspec.json.decode(row["fields"]).items()},
            await _actor(row["user_id"]),
        )
        try:
            await run(job)
        except ApiError as refused:
            log.warning("merge %s could not be finished: %s", merge_id, refused.detail)
    return len(rows)


async def finish_cut_short() -> None:
    """The background jobs' part (once, when they start): `resume_merges`, logged."""
    try:
        finished = await resume_merges()
    except Exception:
        log.exception("merges cut short could not be finished; they will be at the next start")
        return
    if finished:
        log.info("finished %d merges or undos cut short", finished)


async def _actor(user_id: Any) -> Actor:
    """Who a merge or an undo was made by, to finish it in their name (the server itself
    if they may no longer write)."""
    actor = await actor_for_user(str(user_id)) if user_id else None
    return actor or SYSTEM
