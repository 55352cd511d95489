"""An import's progress and its revert (SPEC section 8); the duplicate finder (section 9).

Reverting deletes the records the import created, unless someone changed them since (a
field set by a later write than the import's, other than the geocoder placing it, or a
record added under the account): those stay and are listed. Fields the import filled are
emptied, unless changed since (also listed). All through the one writer, in short
batches (as an import's).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor, scope_filter
from server.core.bulk import LOGGED, Statistics, bulk_write
from server.core.fields import CHILD_TABLES, SERVER, TABLE_FIELDS
from server.core.phones import e164
from server.core.rows import chunks
from server.core.writer import YIELDING, Edit, Source, writing
from server.errors import ApiError
from server.transfer import importing, matching
from sync.protocol import Rejected

STALE_S = 300.0  # a running import's job writes its progress every batch, well under this
GEOCODER = YIELDING[Source.GEOCODER]
_json = msgspec.json.Encoder()


async def _visible_import(actor: Actor, import_id: str) -> dict[str, Any]:
    rows = await db.fetch("SELECT * FROM imports WHERE id = {}", import_id)
    found = rows[0] if rows else None
    if found is None or not actor.is_manager:
        raise ApiError(404, "not_found", "There is no import with this id.")
    mine = str(found["user_id"]) == actor.user_id
    same_team = found["team_id"] is not None and str(found["team_id"]) == actor.team_id
    if not (actor.is_admin or mine or same_team):
        raise ApiError(404, "not_found", "There is no import with this id.")
    return found


def _state(found: dict[str, Any]) -> tuple[str, str]:
    """An import's state, and why it failed: one still "running" whose job has not moved
    on for STALE_S belongs to a process that stopped (it is "failed", and can be reverted)."""
    report = msgspec.json.decode(found["report"] or "{}")
    state, failure = found["state"], report.get("failure", "")
    beat = found["heartbeat_at"] or found["created_at"]
    if state == "running" and (datetime.now(UTC) - beat).total_seconds() > STALE_S:
        return "failed", "The import stopped before its end (its server stopped)."
    return state, failure


# An import's accounts to geocode, counted by what the geocoder made of them (pending:
# neither placed nor found nowhere).
_GEOCODING_COUNTS = (
    "SELECT COUNT(*) AS total,"
    " SUM(CASE WHEN a.lat IS NOT NULL THEN 1 ELSE 0 END) AS placed,"
    " SUM(CASE WHEN a.lat IS NULL AND a.geo_precision = 'none' THEN 1 ELSE 0 END) AS not_found"
)
# On PostgreSQL the accounts are looked up by their ids (an array the subquery makes once),
# not joined: while an import writes, the tables' statistics lag behind, and a join planned
# on them scanned every account for each item (36 s a poll at 48,000 accounts).
_GEOCODING_POSTGRES = (
    f"{_GEOCODING_COUNTS} FROM accounts a WHERE a.id = ANY(ARRAY("
    "SELECT i.record_id FROM import_items i WHERE i.import_id = {} AND i.geocode = {}"
    ")) AND a.deleted = {}"
)
_GEOCODING_SQLITE = (
    f"{_GEOCODING_COUNTS} FROM import_items i JOIN accounts a ON a.id = i.record_id"
    " WHERE i.import_id = {} AND i.geocode = {} AND a.deleted = {}"
)


# While an import runs, its geocoding counts are read again at most every this often per
# process: they cost a read of every account it wrote so far, and the app polls the status
# twice a second (a bench, faster) while the geocoder mostly waits for the import's end.
RUNNING_GEOCODING_FRESH_S = 2.0
_running_geocoding: dict[str, tuple[float, dict[str, int]]] = {}


async def _geocoding(import_id: str, running: bool) -> dict[str, int]:
    now = time.monotonic()
    if running:
        kept = _running_geocoding.get(import_id)
        if kept and now - kept[0] < RUNNING_GEOCODING_FRESH_S:
            return kept[1]
    sql = _GEOCODING_POSTGRES if db.is_postgres() else _GEOCODING_SQLITE
    [row] = await db.fetch(sql, import_id, True, False)
    placed, not_found = int(row["placed"] or 0), int(row["not_found"] or 0)
    pending = int(row["total"]) - placed - not_found
    counts = {"pending": pending, "placed": placed, "not_found": not_found}
    for old in [
        k for k, (at, _) in _running_geocoding.items() if now - at >= RUNNING_GEOCODING_FRESH_S
    ]:
        del _running_geocoding[old]
    if running:
        _running_geocoding[import_id] = (now, counts)
    return counts


async def import_status(actor: Actor, import_id: str) -> dict[str, Any]:
    """An import's progress (rows written of the file's rows), its report, and how far the
    geocoder got with the accounts it created without a position."""
    found = await _visible_import(actor, import_id)
    report = msgspec.json.decode(found["report"] or "{}")
    geocoding = {"pending": 0, "placed": 0, "not_found": 0}
    state, failure = _state(found)
    if found["record_table"] == "accounts" and not found["dry_run"]:
        geocoding = await _geocoding(import_id, running=state == "running")
    finished = found["finished_at"]
    return {
        "import_id": str(found["id"]),
        "table": found["record_table"],
        "dry_run": bool(found["dry_run"]),
        "state": state,
        "failure": failure or None,
        "rows": found["rows"],
        "written": found["written"],
        "created": found["created"],
        "updated": found["updated"],
        "duplicates": found["duplicates"],
        "geocode": report.get("geocode", 0),
        "errors": report.get("errors", []),
        "error_count": report.get("error_count", 0),
        "unknown_columns": report.get("unknown_columns", []),
        "ignored_columns": report.get("ignored_columns", []),
        "encoding": report.get("encoding", ""),
        "preview": report.get("preview", []),
        "geocoding": geocoding,
        "reverted": msgspec.json.decode(found["reverted"] or "{}") or None,
        "created_at": found["created_at"].isoformat(),
        "finished_at": finished.isoformat() if finished else None,
    }


def _changed_since(record: Any, seq: int, fields: list[str] | None = None) -> list[str]:
    """The fields (of `fields`, or all that people write) a write after `seq` set, the
    geocoder's aside: what the server keeps itself (an account's last visit, its phone in
    E.164) follows other writes and is no one's change to the record."""
    kept = {spec.name for spec in TABLE_FIELDS[record.table] if spec.writer == SERVER}
    return sorted(
        name
        for name, stamp in record.stamps.items()
        if (fields is None or name in fields)
        and name not in kept
        and stamp.seq > seq
        and stamp.client_id != GEOCODER
    )


async def revert_import(actor: Actor, import_id: str) -> dict[str, Any]:
    with bulk_write():  # the geocoder holds off, as during the import (server/core/bulk.py)
        return await _revert(actor, import_id)


async def _revert(actor: Actor, import_id: str) -> dict[str, Any]:
    found = await _visible_import(actor, import_id)
    state, _ = _state(found)
    if found["dry_run"]:
        raise ApiError(409, "dry_run", "This was a dry run: it wrote nothing to revert.")
    if state == "reverted":
        raise ApiError(409, "reverted", "This import was reverted already.")
    if state == "running":
        raise ApiError(409, "running", "This import is still running; revert it once it ends.")
    table = found["record_table"]
    items = await db.fetch(
        "SELECT record_id, action, fields, seq FROM import_items WHERE import_id = {}", import_id
    )
    with_children: set[str] = set()
    if table == "accounts":
        created = [str(i["record_id"]) for i in items if i["action"] == "created"]
        for chunk in chunks(created, 500):
            where, args = db.any_of("account_id", chunk)
            for child in CHILD_TABLES:
                rows = await db.fetch(
                    f"SELECT DISTINCT account_id FROM {child} WHERE {where} AND deleted = {{}}",
                    *args,
                    False,
                )
                with_children |= {str(r["account_id"]) for r in rows}
    deleted = emptied = 0
    kept: list[dict[str, Any]] = []
    statistics = Statistics((table, *LOGGED))
    size, start = importing.FIRST_BATCH, 0
    while start < len(items):
        batch = items[start : start + size]
        start += len(batch)
        async with writing(Source.IMPORT) as writer:
            began = time.perf_counter()
            await writer.prefetch([Edit(table, str(item["record_id"])) for item in batch])
            for item in batch:
                record_id, seq = str(item["record_id"]), int(item["seq"])
                record = await writer.load(table, record_id)
                if record is None or record.deleted:
                    continue
                name = record.values.get("name")
                if item["action"] == "created":
                    changed = _changed_since(record, seq)
                    if changed or record_id in with_children:
                        why = f"changed since: {', '.join(changed)}" if changed else "has records"
                        kept.append({"id": record_id, "name": name, "reason": why})
                        continue
                    edit = Edit(table, record_id, op="delete")
                else:
                    filled = list(msgspec.json.decode(item["fields"] or "[]"))
                    changed = _changed_since(record, seq, filled)
                    if changed:
                        kept.append(
                            {"id": record_id, "name": name,
                             "reason": f"changed since: {', '.join(changed)}"}
                        )  # fmt: skip
                    empty = {f: None for f in filled if f not in changed}
                    if not empty:
                        continue
                    edit = Edit(table, record_id, empty)
                try:
                    await writer.apply(actor, edit)
                except Rejected as rejected:
                    kept.append({"id": record_id, "name": name, "reason": rejected.detail})
                    continue
                if edit.op == "delete":
                    deleted += 1
                else:
                    emptied += 1
            await writer.flush()
            took_ms = (time.perf_counter() - began) * 1000
        size = importing.next_batch_size(len(batch), took_ms)
        await statistics.wrote(len(batch))
    await statistics.done()
    summary = {"deleted": deleted, "emptied": emptied, "kept": kept[:1000]}
    await db.fetch(
        "UPDATE imports SET state = {}, reverted = {}, finished_at = {} WHERE id = {}",
        "reverted",
        _json.encode(summary).decode(),
        datetime.now(UTC),
        import_id,
    )
    return {"import_id": import_id, **summary}


# -- duplicates (section 9) ---------------------------------------------------------------


FINDER_PAGE = 5_000  # rows read at a time: on SQLite each page is read on the event loop
CONTACTS_PER_READ = 500  # accounts whose contacts are read at a time


async def _accounts_seen(actor: Actor, columns: str) -> list[dict[str, Any]]:
    """Every live account the caller sees, a page at a time, scope by scope in the list
    index's order (name, id): each page is a range of `accounts_list` (an admin's, of
    `accounts_list_all`), so no page sorts the table, and none holds the event loop long.
    Accounts live in team scopes only: the patterns of the refused writes' scopes ("...*")
    hold none."""
    scopes: list[str | None] = (
        [None] if actor.scopes is None else [s for s in actor.scopes if not s.endswith("*")]
    )
    rows: list[dict[str, Any]] = []
    for scope in scopes:
        after: list[Any] = []
        while True:
            where = ([] if scope is None else ["scope = {}"]) + ["deleted = {}"]
            where += ["(name, id) > ({}, {})"] if after else []
            page = await db.fetch(
                f"SELECT {columns} FROM accounts WHERE {' AND '.join(where)}"
                " ORDER BY name, id LIMIT {}",
                *([] if scope is None else [scope]),
                False,
                *after,
                FINDER_PAGE,
            )
            rows += page
            if len(page) < FINDER_PAGE:
                break
            after = [page[-1]["name"], str(page[-1]["id"])]
    return rows


async def _contacts_of(actor: Actor, account_ids: list[str]) -> list[dict[str, Any]]:
    """The live contacts of these accounts (which the caller sees), by the account_id
    index, a few hundred accounts at a time."""
    scoped, scope_args = scope_filter(actor.scopes) if actor.scopes is not None else ("", [])
    rows: list[dict[str, Any]] = []
    for chunk in chunks(account_ids, CONTACTS_PER_READ):
        where, args = db.any_of("account_id", chunk)
        rows += await db.fetch(
            f"SELECT id, account_id, name, phone, email FROM contacts WHERE {where}"
            f" AND deleted = {{}}{' AND ' + scoped if scoped else ''}",
            *args,
            False,
            *scope_args,
        )
    return rows


def _accounts_index(rows: list[dict[str, Any]]) -> matching.Index:
    return matching.index_of("accounts", (matching.account_keys(r) for r in rows))


def _contacts_index(rows: list[dict[str, Any]], countries: dict[str, str | None]) -> matching.Index:
    return matching.index_of(
        "contacts",
        (
            matching.contact_keys(r, e164(r["phone"], countries.get(str(r["account_id"]))))
            for r in rows
        ),
    )


async def find_duplicates(actor: Actor, table: str, limit: int) -> dict[str, Any]:
    """Groups of records the caller sees that are likely the same (section 9's rule). The
    rule runs over the rows as they are at each call: a record written a moment ago, by a
    phone's sync or anything else, is in the next answer."""
    if table == "accounts":
        rows = await _accounts_seen(actor, "id, name, lat, lng, phone_e164, email, website")
        # Pure computation, seconds over 100,000 records: off the event loop.
        index = await asyncio.to_thread(_accounts_index, rows)
    else:
        accounts = await _accounts_seen(actor, "id, name, country")
        countries = {str(r["id"]): r["country"] for r in accounts}
        rows = await _contacts_of(actor, list(countries))
        index = await asyncio.to_thread(_contacts_index, rows, countries)
    found = await asyncio.to_thread(matching.groups, index, limit)
    return {
        "groups": [
            {"ids": group.ids, "score": group.score, "reasons": group.reasons} for group in found
        ]
    }
