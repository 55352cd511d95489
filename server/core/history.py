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

Entries are held back and written with the session's other rows (one INSERT per batch).
The chain needs the hash of each changed record's newest entry (a create needs none). Every
seq a record gets leaves an entry, so the newest entry is the one at the seq the record had
before the change: `HEADS` keeps, per process, the newest (seq, hash) of the records whose
entries committed transactions wrote, and a record whose seq in this transaction is the
one kept needs no read. The others' are read once per batch, one index seek each
(`newest_hashes`).
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
from server.core.rows import IN_CHUNK, chunks

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
SOURCE_NAMES = {
    "demo": "system",
    "review": "rest",
    "campaign": "rest",
    "upload": "system",
    "erase": "rest",
    "retention": "system",
}
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


class Heads:
    """The newest entry (seq, hash) of records whose entries committed transactions wrote,
    by (epoch, record id): at most `limit`, the oldest forgotten first. Filled only after a
    commit (a rolled-back transaction hands its seqs out again, to other changes); asked
    with the seq the record has in the asking transaction, so an entry another process
    wrote since (the record then has a newer seq) is never taken for the newest."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._heads: dict[tuple[str, str], tuple[int, str]] = {}

    def get(self, epoch: str, record_id: str, seq: int) -> str | None:
        head = self._heads.get((epoch, record_id))
        return head[1] if head is not None and head[0] == seq else None

    def put(self, epoch: str, heads: dict[str, tuple[int, str]]) -> None:
        for record_id, head in heads.items():
            key = (epoch, record_id)
            self._heads.pop(key, None)  # to the end: the most recently written
            self._heads[key] = head
        while len(self._heads) > self.limit:
            del self._heads[next(iter(self._heads))]

    def clear(self) -> None:
        self._heads.clear()


HEADS = Heads()
db.ON_CONFIGURE.append(HEADS.clear)  # another database's records


class HistoryLog:
    """The entries a session made, written with its other rows (`write`)."""

    def __init__(self) -> None:
        # Entries noted, not yet written: the row's values but prev_hash and hash, and the
        # seq the record had before the change (None: a create, or not known).
        self._pending: list[tuple[list[Any], int | None]] = []
        # The newest entry (seq, hash) of each record as this transaction has it.
        self._heads: dict[str, tuple[int, str]] = {}

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
        prev_seq: int | None = None,
    ) -> None:
        """An entry for a change at `seq`; `prev_seq`: the record's seq before it (None for
        a create, or when not known: its newest entry is then read)."""
        source = SOURCE_NAMES.get(source, source)
        if user_id is None and source in PEOPLE_SOURCES:
            source = "system"
        if client_id.startswith("+"):  # a yielding job's client id ("+geocoder")
            client_id = SERVER_CLIENT_ID
        if op in ("create", "erase"):
            # A new record has no entry before; an erasure removed every entry before its
            # own, and starts the record's chain again (docs/history.md).
            self._heads[record_id] = (0, "")
        row = [seq, table, record_id, at, user_id, client_id, source, op, fields_text(fields)]
        self._pending.append((row, prev_seq))

    async def write(self, epoch: str) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        heads = self._heads
        unknown: set[str] = set()
        for row, prev_seq in pending:
            record_id = row[2]
            if record_id in heads or record_id in unknown:
                continue
            known = HEADS.get(epoch, record_id, prev_seq) if prev_seq is not None else None
            if known is not None:
                heads[record_id] = (prev_seq or 0, known)
            else:
                unknown.add(record_id)
        for chunk in chunks(sorted(unknown), IN_CHUNK):
            found = await newest_hashes(chunk)
            for record_id in chunk:
                heads[record_id] = (0, found.get(record_id, ""))
        rows = []
        for entry, _ in pending:
            seq, record_id = entry[0], entry[2]
            prev = heads[record_id][1]
            digest = entry_hash(prev, *entry)
            heads[record_id] = (seq, digest)
            rows.append([*entry, prev, digest])
        await db.insert_rows("history", COLUMNS, rows)

    def committed(self, epoch: str) -> None:
        """The transaction that wrote these entries has committed: keep its heads."""
        HEADS.put(epoch, {r: head for r, head in self._heads.items() if head[0]})


async def newest_hashes(record_ids: Sequence[str]) -> dict[str, str]:
    """The hash of each of these records' newest entry (records with none left out): the
    last of each record's entries on the index (record_id, seq), one seek each."""
    if db.is_postgres():
        rows = await db.fetch(
            "SELECT r.record_id, h.hash FROM unnest({}::uuid[]) AS r(record_id)"
            " CROSS JOIN LATERAL (SELECT hash FROM history WHERE history.record_id ="
            " r.record_id ORDER BY seq DESC LIMIT 1) AS h",
            list(record_ids),
        )
    else:
        ids = db.padded(record_ids)
        values = ", ".join("({})" for _ in ids)
        rows = await db.fetch(
            "SELECT v.column1 AS record_id, (SELECT hash FROM history WHERE record_id ="
            f" v.column1 ORDER BY seq DESC LIMIT 1) AS hash FROM (VALUES {values}) AS v",
            *ids,
        )
    return {str(r["record_id"]): r["hash"] for r in rows if r["hash"] is not None}


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
