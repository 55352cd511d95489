"""Merging records into one, and undoing it (SPEC section 9, rule 13).

A merge is one write transaction through the one writer (source `merge`), all or nothing:
1. what hangs off each merged account moves to the survivor: its contacts, visits, notes,
   tasks and deals through the CRM's rules, its conflicts and rejections rows re-pointed;
2. the survivor takes the values `fields` names (one write: its history entry is a
   `merge` that names the merged records, even when no value changed);
3. each merged record is deleted, merged into the survivor: devices get the delete with
   `merged_into`, and a later write to it lands on the survivor (rule 13);
4. the merge log (merges, merge_items) keeps what each write did and the seq it got.

Undo, also one transaction: the merged records come back as they were; what was moved
from them goes back unless it was moved or changed since (its `account_id` no longer the
merge's write); the survivor's fields the merge filled get their old values back unless
written since. What stays is listed. What was written since the merge stays where it was
written (a visit added to a merged-away account, which landed on the survivor, stays
there).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor
from server.core.fields import CHILD_TABLES, MERGEABLE, SERVER, SERVER_MADE, TABLE_FIELDS
from server.core.writer import Edit, Source, Writer, writing
from server.errors import REJECTION_STATUS, ApiError
from server.merging.schemas import Kept, MergeAnswer, MergeRequest, UndoAnswer
from sync.engine import StoredRecord
from sync.protocol import Rejected

MAX_MERGED = 20  # records merged into one survivor at once
# Records moved by one merge: it holds the writer's lock while it runs, about 0.6 ms each
# (bench/merge.py).
MAX_MOVED = 5_000
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


async def merge(actor: Actor, request: MergeRequest, now_ms: int | None = None) -> MergeAnswer:
    """Merge `request.merged_ids` into `request.survivor_id` (see the module's docstring).
    `now_ms`: the server's time for it (tests fix it); by default the wall clock."""
    table = request.table
    survivor_id, merged_ids, fields = _check_request(actor, request)
    merge_id = str(uuid.uuid4())
    items: list[list[Any]] = []
    moved: Counter[str] = Counter()
    try:
        async with writing(Source.MERGE, now_ms=now_ms) as writer:
            survivor = await _live(writer, actor, table, survivor_id)
            merged = [await _live(writer, actor, table, record_id) for record_id in merged_ids]
            if any(record.scope != survivor.scope for record in merged):
                raise ApiError(
                    422, "different_teams", f"The {table} to merge must all be in one team."
                )
            if table == "accounts":
                await _move_children(writer, actor, merged, survivor_id, merge_id, items, moved)
            by_id = {record.id: record for record in merged}
            winners = {
                name: _wire(by_id[winner].values.get(name))
                for name, winner in sorted(fields.items())
                if winner != survivor_id
                and by_id[winner].values.get(name) != survivor.values.get(name)
            }
            before = {name: _wire(survivor.values.get(name)) for name in winners}
            label = {"merged": {"old": None, "new": merged_ids}}
            await writer.apply(actor, Edit(table, survivor_id, winners), label=label)
            if winners:
                after = await writer.load(table, survivor_id)
                assert after is not None
                seq = max(after.stamps[name].seq for name in winners)
                items.append(_item(merge_id, table, survivor_id, "filled", None, before, seq))
            for record_id in merged_ids:
                await writer.merge_away(actor, table, record_id, survivor_id, merge_id)
                gone = await writer.load(table, record_id)
                assert gone is not None
                items.append(_item(merge_id, table, record_id, "merged", None, {}, gone.seq))
            await db.insert_rows(
                "merges",
                ("id", "record_table", "survivor_id", "merged_ids", "fields", "user_id",
                 "created_at"),
                [[merge_id, table, survivor_id, _json.encode(merged_ids).decode(),
                  _json.encode(fields).decode(), actor.user_id or None, datetime.now(UTC)]],
            )  # fmt: skip
            await db.insert_rows("merge_items", ITEM_COLUMNS, items)
    except Rejected as rejected:
        raise ApiError(
            REJECTION_STATUS.get(rejected.error, 422), rejected.error, rejected.detail
        ) from None
    return MergeAnswer(
        merge_id=merge_id,
        survivor_id=survivor_id,
        merged_ids=merged_ids,
        fields=sorted(winners),
        moved=dict(sorted(moved.items())),
    )


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
    writer: Writer,
    actor: Actor,
    merged: list[StoredRecord],
    survivor_id: str,
    merge_id: str,
    items: list[list[Any]],
    moved: Counter[str],
) -> None:
    """Everything that hangs off the merged accounts now hangs off the survivor: their live
    records, the conflicts about them or about those records (a deleted record's stay with
    it), and the refused writes about them."""
    found: list[tuple[str, str, str]] = []  # (table, id, the merged account it left)
    for account in merged:
        moving = {account.id}
        for table in CHILD_TABLES:
            rows = await db.fetch(
                f"SELECT id FROM {table} WHERE account_id = {{}} AND deleted = {{}} ORDER BY id",
                account.id,
                False,
            )
            found += [(table, str(row["id"]), account.id) for row in rows]
            moving |= {str(row["id"]) for row in rows}
        for table in SERVER_MADE:
            rows = await db.fetch(
                f"SELECT id, record_id FROM {table} WHERE account_id = {{}} ORDER BY id",
                account.id,
            )
            found += [
                (table, str(row["id"]), account.id)
                for row in rows
                if table == "rejections" or str(row["record_id"]) in moving
            ]
    if len(found) > MAX_MOVED:
        raise ApiError(
            413,
            "too_large",
            f"This merge would move {len(found)} records; at most {MAX_MOVED} move at once.",
        )
    edits = [Edit(t, i, {"account_id": survivor_id}) for t, i, _ in found if t in CHILD_TABLES]
    writer.gather_last_visits()
    await writer.apply_all(actor, edits)
    await writer.settle_last_visits()
    for table, record_id, from_id in found:
        if table in SERVER_MADE:
            await writer.set_account(table, record_id, survivor_id)
            seq = 0
        else:
            record = await writer.load(table, record_id)
            assert record is not None
            seq = record.stamps["account_id"].seq
        items.append(_item(merge_id, table, record_id, "moved", from_id, {}, seq))
        moved[table] += 1


# -- undo -----------------------------------------------------------------------------


async def undo(actor: Actor, merge_id_text: str, now_ms: int | None = None) -> UndoAnswer:
    """Undo a merge (see the module's docstring)."""
    try:
        merge_id = str(uuid.UUID(merge_id_text))
    except ValueError:
        raise ApiError(404, "not_found", "There is no merge with this id.") from None
    kept: list[Kept] = []
    moved_back: Counter[str] = Counter()
    restored_fields: list[str] = []
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
            items = await db.fetch(
                "SELECT record_table, record_id, kind, from_id, fields, seq FROM merge_items"
                " WHERE merge_id = {} ORDER BY id",
                merge_id,
            )
            moved = [item for item in items if item["kind"] == "moved"]
            await writer.prefetch(
                [Edit(item["record_table"], str(item["record_id"])) for item in moved]
            )
            writer.gather_last_visits()
            for item in moved:
                await _move_back(writer, actor, item, survivor_id, moved_back, kept)
            await writer.settle_last_visits()
            label = {"merged": {"old": merged_ids, "new": None}}
            restore: dict[str, Any] = {}
            current = await writer.load(table, survivor_id)
            assert current is not None
            for item in items:
                if item["kind"] != "filled":
                    continue
                for name, value in msgspec.json.decode(item["fields"]).items():
                    if current.stamps[name].seq == int(item["seq"]):
                        restore[name] = value
                    else:
                        reason = f"its {name} was changed since the merge"
                        kept.append(Kept(table=table, id=survivor_id, reason=reason))
            await writer.apply(actor, Edit(table, survivor_id, restore), label=label)
            restored_fields = sorted(restore)
            await db.fetch(
                "UPDATE merges SET undone_at = {}, undone_by = {} WHERE id = {}",
                datetime.now(UTC),
                actor.user_id or None,
                merge_id,
            )
    except Rejected as rejected:
        raise ApiError(
            REJECTION_STATUS.get(rejected.error, 422), rejected.error, rejected.detail
        ) from None
    return UndoAnswer(
        merge_id=merge_id,
        restored=merged_ids,
        fields=restored_fields,
        moved_back=dict(sorted(moved_back.items())),
        kept=kept,
    )


async def _move_back(
    writer: Writer,
    actor: Actor,
    item: dict[str, Any],
    survivor_id: str,
    moved_back: Counter[str],
    kept: list[Kept],
) -> None:
    """One record the merge moved to the survivor goes back to the account it left, unless
    it was moved or deleted since."""
    table, record_id, from_id = item["record_table"], str(item["record_id"]), str(item["from_id"])
    record = await writer.load(table, record_id)
    if record is None:
        return
    if table in SERVER_MADE:
        if record.values.get("account_id") == survivor_id:
            await writer.set_account(table, record_id, from_id)
            moved_back[table] += 1
        return
    stamp = record.stamps.get("account_id")
    if record.deleted:
        kept.append(Kept(table=table, id=record_id, reason="deleted since the merge"))
    elif (
        record.values.get("account_id") != survivor_id
        or stamp is None
        or (stamp.seq != int(item["seq"]))
    ):
        kept.append(Kept(table=table, id=record_id, reason="moved since the merge"))
    else:
        await writer.apply(actor, Edit(table, record_id, {"account_id": from_id}))
        moved_back[table] += 1
