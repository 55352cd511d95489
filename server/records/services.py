"""Reading and writing records for the REST endpoints. Reads are scoped to the caller in
SQL; writes go through the one writer (server/core/writer.py), so every change gets a
seq and reaches devices like any phone's write."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor, scope_filter
from server.core.erased import ERASED_DETAIL, is_erased
from server.core.fields import CHILD_TABLES, SPECS
from server.core.rows import WIRE_ROWS, record_from_row, rows_by_version, wire_row
from server.core.rules import merged_into
from server.core.store import STORE
from server.core.writer import Edit, Source, writing
from server.errors import REJECTION_STATUS, ApiError, over_limit_error
from server.records.search import search_clause, words
from sync.engine import StoredRecord
from sync.protocol import OverLimit, Rejected

MAX_PAGE = 200
ORDER = {"accounts": "name, id", "tasks": "due_at, id"}
CHILDREN_SHOWN = 500  # of each table, in an account's whole record (GET /api/accounts/{id})
CHILD_ORDER = {"visits": "started_at DESC, id", "tasks": "due_at, id"}  # else newest first


def parse_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(404, "not_found", "There is no record with this id.") from None


def _scope_clause(actor: Actor) -> tuple[str, list[Any]]:
    scopes = actor.scopes
    if scopes is None:
        return "", []
    where, args = scope_filter(scopes)
    return f" AND {where}", args


async def list_records(
    actor: Actor,
    table: str,
    *,
    q: str | None,
    status: str | None,
    account_id: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    where, args = _scope_clause(actor)
    sql = f"SELECT id, seq FROM {table} WHERE deleted = {{}}{where}"
    args = [False, *args]
    typed = words(q) if q and not q.isspace() else None
    if typed:
        before, before_args, clause, clause_args = search_clause(table, typed)
        sql = before + sql + clause
        args = [*before_args, *args, *clause_args]
    if status is not None:
        column = {"accounts": "status", "deals": "stage"}.get(table)
        if column is None:
            raise ApiError(400, "malformed", f"{table} cannot be filtered by status.")
        sql += f" AND {column} = {{}}"
        args.append(status)
    if account_id is not None:
        if "account_id" not in SPECS[table] and table != "conflicts":
            raise ApiError(400, "malformed", f"{table} cannot be filtered by account_id.")
        try:
            account_uuid = str(uuid.UUID(account_id))
        except ValueError:
            raise ApiError(400, "malformed", "account_id must be a UUID.") from None
        sql += " AND account_id = {}"
        args.append(account_uuid)
    if typed is not None and not typed:  # only punctuation: no word starts with it
        return {"items": [], "next_offset": None}
    order = ORDER.get(table, "updated_at DESC, id")
    # The page's ids and seqs first (from the list index alone, where it covers the filter:
    # a sort of ids, not of whole rows), then the rows, from the cache of row versions or
    # the table. No transaction (two round trips fewer): a row read after the ids may be
    # newer, and is checked again. Slow: a search, or a page at any offset, is not a
    # bounded lookup (off the event loop on SQLite, and time-limited).
    found = await db.fetch(
        f"{sql} ORDER BY {order} LIMIT {{}} OFFSET {{}}", *args, limit + 1, offset, slow=True
    )
    page = [(str(row["id"]), int(row["seq"])) for row in found[:limit]]
    items = await _wire_rows(actor, table, page)
    return {"items": items, "next_offset": offset + limit if len(found) > limit else None}


async def _wire_rows(
    actor: Actor, table: str, versions: list[tuple[str, int]]
) -> list[msgspec.Raw]:
    """The rows of these versions as clients see them, in that order: from the cache, else
    from the table as they are now (skipped if since deleted or moved out of sight). Each
    as its JSON, made once per version and spliced into the answer."""
    if not versions:
        return []
    epoch = await STORE.epoch()
    rows, read = await rows_by_version(epoch, table, versions)
    for record, wired in read:
        # Committed (read outside a transaction or in a read one): the cache may keep it.
        WIRE_ROWS.put((epoch, table, record.id, record.seq), wired)
        if not record.deleted and actor.sees(record.scope):
            rows[record.id] = wired
    return [row.json() for record_id, _ in versions if (row := rows.get(record_id)) is not None]


async def get_record(actor: Actor, table: str, record_id: str) -> dict[str, Any]:
    rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", parse_id(record_id))
    record = record_from_row(table, rows[0], with_stamps=False) if rows else None
    if record is None or not actor.sees(record.scope):
        raise ApiError(404, "not_found", f"There is no {table[:-1]} with this id.")
    if record.deleted:
        survivor = await _survivor(actor, record)
        if survivor is not None:
            raise ApiError(
                307,
                "merged",
                f"This {table[:-1]} was merged into {survivor}: read that one.",
                headers={"Location": f"/api/{table}/{survivor}"},
                merged_into=survivor,
            )
        raise ApiError(404, "not_found", f"There is no {table[:-1]} with this id.")
    return wire_row(record)


async def _survivor(actor: Actor, record: StoredRecord) -> str | None:
    """The live record a merged-away one stands for (rule 13's merged_into, following
    merges of merges), if the caller sees it; None when the record was not merged or its
    survivor is gone."""
    async with STORE.read() as session:
        survivor = await merged_into(session, record)
    return survivor.id if survivor is not None and actor.sees(survivor.scope) else None


async def get_account(actor: Actor, record_id: str) -> dict[str, Any]:
    """An account with what hangs off it, read in one snapshot (and, on SQLite, over one
    connection instead of one per query)."""
    async with db.read_transaction():
        return await _account_with_children(actor, record_id)


async def _account_with_children(actor: Actor, record_id: str) -> dict[str, Any]:
    account = await get_record(actor, "accounts", record_id)
    result: dict[str, Any] = {"account": account}
    # The children's (id, seq) in one query over the five tables, each numbered in its
    # own order; then the rows, from the cache of row versions or their tables.
    # At most CHILDREN_SHOWN of each, the newest (tasks: the soonest due): an account with
    # thousands of notes is paged through `GET /api/{table}?account_id=`, and `truncated`
    # names the tables cut, so no request does work in proportion to an account's history.
    parts = []
    for child in CHILD_TABLES:
        order = CHILD_ORDER.get(child, "created_at DESC, id")
        parts.append(
            f"SELECT * FROM (SELECT '{child}' AS record_table, id, seq,"
            f" ROW_NUMBER() OVER (ORDER BY {order}) AS n FROM {child}"
            f" WHERE account_id = {{}} AND deleted = {{}} ORDER BY {order}"
            f" LIMIT {CHILDREN_SHOWN + 1}) AS {child}_shown"
        )
    # Slow: as many as were written on the account (off the event loop on SQLite).
    rows = await db.fetch(
        " UNION ALL ".join(parts), *[account["id"], False] * len(parts), slow=True
    )
    versions: dict[str, list[tuple[str, int]]] = {child: [] for child in CHILD_TABLES}
    for row in sorted(rows, key=lambda r: int(r["n"])):
        versions[row["record_table"]].append((str(row["id"]), int(row["seq"])))
    truncated = [child for child in CHILD_TABLES if len(versions[child]) > CHILDREN_SHOWN]
    for child in CHILD_TABLES:
        result[child] = await _wire_rows(actor, child, versions[child][:CHILDREN_SHOWN])
    result["truncated"] = truncated
    return result


async def write(
    actor: Actor,
    table: str,
    record_id: str,
    op: str,
    fields: dict[str, Any],
    *,
    may_create: bool = True,
) -> dict[str, Any] | None:
    """One write through the one writer, as `actor`; the record after it. An upsert
    creates the record only when `may_create` (POST, not PATCH).

    A merged-away record stands for its survivor (rule 13, as a phone's write): an update
    lands on the survivor, whose row is answered (its id says where it went); a delete
    is done already (None), as the merge deleted it."""
    async with writing(Source.REST) as writer:
        existing = await writer.load(table, record_id)
        if is_erased(existing):
            raise ApiError(404, "erased", ERASED_DETAIL)
        if op != "upsert" or existing is not None or not may_create:
            if existing is None or not actor.sees(existing.scope):
                raise ApiError(404, "not_found", f"There is no {table[:-1]} with this id.")
            if existing.deleted:
                survivor = await merged_into(writer.session, existing)
                if survivor is None or not actor.sees(survivor.scope):
                    raise ApiError(404, "not_found", f"This {table[:-1]} was deleted.")
                if op == "delete":
                    return None
                record_id = survivor.id
        try:
            await writer.apply(actor, Edit(table, record_id, fields, op))
        except Rejected as rejected:
            status = REJECTION_STATUS.get(rejected.error, 422)
            raise ApiError(status, rejected.error, rejected.detail) from None
        except OverLimit as over:
            raise over_limit_error(
                over.status, over.error, over.detail, over.retry_after_s
            ) from None
        record = await writer.load(table, record_id)
    return wire_row(record) if record is not None and not record.deleted else None


async def write_exists(table: str, record_id: str) -> bool:
    return bool(await db.fetch(f"SELECT id FROM {table} WHERE id = {{}}", record_id))


async def apply_rejection(
    actor: Actor, rejection_id: str, account_id: str | None
) -> dict[str, Any]:
    """Apply a refused write again through the one writer, on behalf of its writer with the
    manager's authority (so a visit keeps its author), optionally attached to another
    account; the rejection is then resolved. The answer: the write's status and the
    record after it."""
    async with writing(Source.REVIEW) as writer:
        rejection = await writer.load("rejections", rejection_id)
        if rejection is None or rejection.deleted or not actor.sees(rejection.scope):
            raise ApiError(404, "not_found", "There is no rejection with this id.")
        values = rejection.values
        if values["resolved"]:
            raise ApiError(409, "resolved", "This rejection is already resolved.")
        table, op = values["table"], values["op"]
        fields = values["fields"] if isinstance(values["fields"], dict) else {}
        if account_id is not None:
            if table not in SPECS or "account_id" not in SPECS[table] or op != "upsert":
                raise ApiError(422, "invalid", f"A write to {table} has no account to change.")
            fields = {**fields, "account_id": parse_id(account_id)}
        on_behalf = Actor(
            user_id=values["user_id"] or actor.user_id,
            username=actor.username,
            role=actor.role,
            team_id=actor.team_id,
        )
        try:
            status = await writer.apply(on_behalf, Edit(table, values["record_id"], fields, op))
        except Rejected as rejected:
            code = REJECTION_STATUS.get(rejected.error, 422)
            raise ApiError(code, rejected.error, rejected.detail) from None
        await writer.apply(actor, Edit("rejections", rejection_id, {"resolved": True}))
        record = await writer.load(table, values["record_id"])
    row = wire_row(record) if record is not None and not record.deleted else None
    return {"status": status, "record": row}
