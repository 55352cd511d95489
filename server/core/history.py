"""A record's history (SPEC section 11): one entry per applied change, written by the
storage session in the transaction that stores the change, whatever path it came by.

Each entry: the change's seq (the record's new seq), when, who (the stamp's user; none for
the server's own), from which device ("server" for the server's own), the source, the op
(create, update, delete, move) and each field's old and new value. A write that changed
nothing (every field lost, or only clocks moved) leaves none.

Tamper evidence (docs/history.md): each record's entries form a hash chain. An entry's
`hash` is SHA-256 over a canonical encoding of its content and `prev_hash`, the hash of the
record's entry before it ("" for its first). `verify` (`fieldcrm verify-history`) finds an
entry whose content no longer gives its hash (changed), one whose `prev_hash` is not the
hash of the entry before it (one removed, or changed), and a record whose newest entry is
not at the record's seq (its newest entries removed).

Entries are held back and written with the session's other rows (one INSERT per batch);
the hash of each record's newest entry is read once per batch, for the records that had
one (a create needs none).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core.actor import SERVER_CLIENT_ID
from server.core.fields import TABLES

# Canonical JSON: keys sorted, no spaces (msgspec's encoding of the same value is stable).
_canonical = msgspec.json.Encoder(order="sorted")
COLUMNS = (
    "seq",
    "record_table",
    "record_id",
    "at",
    "user_id",
    "client_id",
    "source",
    "op",
    "fields",
    "prev_hash",
    "hash",
)
# Sources as SPEC section 11 names them; the writer's own sources map onto them.
SOURCE_NAMES = {"demo": "system", "review": "rest", "erase": "rest", "retention": "system"}
# Writes the server derives from a person's write (a visit's account's last visit, a
# planned visit marked done) carry no user: their source is the server's own.
PEOPLE_SOURCES = ("sync", "rest")


def fields_text(fields: dict[str, dict[str, Any]]) -> str:
    return _canonical.encode(fields).decode()


def at_text(at: datetime) -> str:
    """A time as the hash covers it: UTC, to the microsecond (both engines keep that)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str,
    seq: int,
    table: str,
    record_id: str,
    at: datetime,
    user_id: str | None,
    client_id: str,
    source: str,
    op: str,
    fields: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON array of an entry's content, the previous
    entry's hash first."""
    content = [
        prev_hash,
        seq,
        table,
        record_id,
        at_text(at),
        user_id,
        client_id,
        source,
        op,
        fields,
    ]
    return hashlib.sha256(_canonical.encode(content)).hexdigest()


@dataclass
class _Entry:
    seq: int
    table: str
    record_id: str
    at: datetime
    user_id: str | None
    client_id: str
    source: str
    op: str
    fields: str


class HistoryLog:
    """The entries a session made, written with its other rows (`write`)."""

    def __init__(self) -> None:
        self._pending: list[_Entry] = []
        # The hash of each record's newest entry, as this transaction has it.
        self._heads: dict[str, str] = {}

    def note(
        self,
        source: str,
        table: str,
        record_id: str,
        seq: int,
        at: datetime,
        user_id: str | None,
        client_id: str,
        op: str,
        fields: dict[str, dict[str, Any]],
    ) -> None:
        source = SOURCE_NAMES.get(source, source)
        if user_id is None and source in PEOPLE_SOURCES:
            source = "system"
        if client_id.startswith("+"):  # a yielding job's client id ("+geocoder")
            client_id = SERVER_CLIENT_ID
        if op in ("create", "erase"):
            # A new record has no entry before; an erasure removed every entry before its
            # own, and starts the record's chain again (docs/history.md).
            self._heads[record_id] = ""
        entry = _Entry(seq, table, record_id, at, user_id, client_id, source, op, "")
        entry.fields = fields_text(fields)
        self._pending.append(entry)

    async def write(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        unknown = sorted({e.record_id for e in pending if e.record_id not in self._heads})
        for part in range(0, len(unknown), 500):
            self._heads.update(await newest_hashes(unknown[part : part + 500]))
        rows = []
        for e in pending:
            prev = self._heads.get(e.record_id, "")
            digest = entry_hash(
                prev,
                e.seq,
                e.table,
                e.record_id,
                e.at,
                e.user_id,
                e.client_id,
                e.source,
                e.op,
                e.fields,
            )
            self._heads[e.record_id] = digest
            rows.append(
                [
                    e.seq,
                    e.table,
                    e.record_id,
                    e.at,
                    e.user_id,
                    e.client_id,
                    e.source,
                    e.op,
                    e.fields,
                    prev,
                    digest,
                ]
            )
        await db.insert_rows("history", COLUMNS, rows)


async def newest_hashes(record_ids: Sequence[str]) -> dict[str, str]:
    """The hash of each of these records' newest entry (records with none left out)."""
    condition, args = db.any_of("record_id", record_ids)
    rows = await db.fetch(
        "SELECT h.record_id, h.hash FROM history h JOIN (SELECT record_id, MAX(seq) AS seq"
        f" FROM history WHERE {condition} GROUP BY record_id) newest ON h.seq = newest.seq",
        *args,
    )
    return {str(r["record_id"]): r["hash"] for r in rows}


# -- verifying ------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    table: str
    record_id: str
    seq: int | None
    what: str

    def line(self) -> str:
        at = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.table} {self.record_id}{at}: {self.what}"


async def _entries_by_record(batch: int = 2000) -> AsyncIterator[list[dict[str, Any]]]:
    """Every record's entries, oldest first, a record at a time, read in pages; each with
    `cut_hash`, the hash where the retention job cut the record's chain (None: never)."""
    after: tuple[str, int] = ("", -1)
    current: list[dict[str, Any]] = []
    columns = ", ".join(f"h.{name}" for name in COLUMNS)
    while True:
        rows = await db.fetch(
            f"SELECT {columns}, c.hash AS cut_hash FROM history h"
            " LEFT JOIN history_cuts c ON c.record_id = h.record_id"
            " WHERE h.record_id > {} OR (h.record_id = {} AND h.seq > {})"
            " ORDER BY h.record_id, h.seq LIMIT {}",
            after[0] or "00000000-0000-0000-0000-000000000000",
            after[0] or "00000000-0000-0000-0000-000000000000",
            after[1],
            batch,
        )
        for row in rows:
            row["record_id"] = str(row["record_id"])
            if current and current[0]["record_id"] != row["record_id"]:
                yield current
                current = []
            current.append(row)
        if len(rows) < batch:
            break
        after = (rows[-1]["record_id"], rows[-1]["seq"])
    if current:
        yield current


def _chain_problems(table: str, record_id: str, entries: list[dict[str, Any]]) -> list[Problem]:
    """What one record's entries, oldest first, show was changed or removed."""
    problems: list[Problem] = []
    prev = ""
    first_kept = entries[0]["cut_hash"] or ""  # where retention cut the chain, if it did
    erased = False
    for index, row in enumerate(entries):
        seq = int(row["seq"])
        user_id = None if row["user_id"] is None else str(row["user_id"])
        expected = entry_hash(
            row["prev_hash"],
            seq,
            row["record_table"],
            record_id,
            row["at"],
            user_id,
            row["client_id"],
            row["source"],
            row["op"],
            row["fields"],
        )
        if expected != row["hash"]:
            problems.append(Problem(table, record_id, seq, "entry changed"))
        if erased:
            problems.append(Problem(table, record_id, seq, "entry after the record's erasure"))
        if row["op"] == "erase":
            # An erasure removed every entry before its own and starts the chain again.
            if index:
                what = "entries before the record's erasure (its values are back)"
                problems.append(Problem(table, record_id, seq, what))
            if row["prev_hash"] != "":
                problems.append(Problem(table, record_id, seq, "entry changed"))
            erased = True
        elif index == 0 and row["prev_hash"] not in ("", first_kept):
            problems.append(Problem(table, record_id, seq, "earlier entry removed"))
        elif index and row["prev_hash"] != prev:
            problems.append(Problem(table, record_id, seq, "entry before it removed or changed"))
        prev = row["hash"]
    return problems


async def verify() -> list[Problem]:
    """Every entry changed or removed outside fieldcrm, as far as the chains tell: each
    record's chain (docs/history.md), from its start, from where the retention job cut it,
    or from its erasure; and the erasures and cuts themselves."""
    problems: list[Problem] = []
    async for entries in _entries_by_record():
        table, record_id = entries[0]["record_table"], entries[0]["record_id"]
        if table not in TABLES:  # only a hand could have written it
            table = "history"
        problems += _chain_problems(table, record_id, entries)
        newest = int(entries[-1]["seq"])
        if table not in TABLES:
            continue
        rows = await db.fetch(f"SELECT seq FROM {table} WHERE id = {{}}", record_id)
        if rows and int(rows[0]["seq"]) > newest:
            problems.append(Problem(table, record_id, None, "newest entries removed"))
    return problems + await _anchor_problems()


async def _anchor_problems() -> list[Problem]:
    """An erased record whose erase entry is gone; a record whose chain retention cut and
    whose entries since are all gone."""
    problems: list[Problem] = []
    rows = await db.fetch(
        "SELECT r.record_table, r.record_id FROM erased_records r WHERE r.record_table"
        " NOT IN ('conflicts', 'rejections') AND NOT EXISTS (SELECT 1 FROM history h"
        " WHERE h.record_id = r.record_id AND h.op = 'erase') ORDER BY r.record_id"
    )
    for row in rows:
        problems.append(
            Problem(row["record_table"], str(row["record_id"]), None, "erase entry removed")
        )
    rows = await db.fetch(
        "SELECT c.record_table, c.record_id, c.seq FROM history_cuts c WHERE NOT EXISTS"
        " (SELECT 1 FROM history h WHERE h.record_id = c.record_id) ORDER BY c.record_id"
    )
    for row in rows:
        table, record_id = row["record_table"], str(row["record_id"])
        if table not in TABLES:
            continue
        found = await db.fetch(f"SELECT seq FROM {table} WHERE id = {{}}", record_id)
        if found and int(found[0]["seq"]) > int(row["seq"]):
            problems.append(Problem(table, record_id, None, "newest entries removed"))
    return problems


# -- retention ------------------------------------------------------------------------


async def cut_before(cutoff: datetime, batch: int = 1000) -> int:
    """Remove the history entries stored before `cutoff` (the retention of history, docs/
    privacy.md), oldest first, in write transactions of `batch` entries; how many. Each
    record loses the start of its chain: where it was cut (the seq and hash of the newest
    entry removed) is kept in `history_cuts`, so `verify` still checks what remains. Erase
    entries stay: they hold no value, and are all that is left of an erasure. The walk
    stops at the first entry stored at or after `cutoff`."""
    removed = 0
    after = -1
    while True:
        async with db.write_transaction():
            rows = await db.fetch(
                "SELECT seq, record_table, record_id, at, op, hash FROM history"
                " WHERE seq > {} ORDER BY seq LIMIT {}",
                after,
                batch,
            )
            gone: list[int] = []
            cuts: dict[str, list[Any]] = {}
            done = len(rows) < batch
            for row in rows:
                at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=UTC)
                if at >= cutoff:
                    done = True
                    break
                after = int(row["seq"])
                if row["op"] == "erase":
                    continue
                gone.append(after)
                record_id = str(row["record_id"])
                cuts[record_id] = [record_id, row["record_table"], after, row["hash"], cutoff]
            for chunk in range(0, len(gone), 500):
                where, args = db.any_of("seq", gone[chunk : chunk + 500])
                await db.fetch(f"DELETE FROM history WHERE {where}", *args)
            await db.insert_rows(
                "history_cuts",
                ("record_id", "record_table", "seq", "hash", "cut_at"),
                list(cuts.values()),
                upsert="ON CONFLICT (record_id) DO UPDATE SET seq = excluded.seq,"
                " hash = excluded.hash, cut_at = excluded.cut_at",
            )
        removed += len(gone)
        if done:
            return removed
