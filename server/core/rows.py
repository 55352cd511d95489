"""Records as the database keeps them and as clients see them.

A row read from a record table becomes a `StoredRecord` (values by wire name, JSON fields
decoded, per-field stamps) with `record_from_row`, and a record becomes the row clients
see with `wire_row`. `WIRE_ROWS` caches those rows by version across requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from server import db
from server.core.actor import Actor, scope_filter
from server.core.fields import SPECS, db_column
from sync.clock import Stamp
from sync.engine import StoredRecord
from sync.protocol import WireRow

IN_CHUNK = 500  # ids per `IN (...)` / array in one statement

T = TypeVar("T")

_json = msgspec.json.Encoder()
# A record's clocks: {"field": [ms, counter, client_id, user_id, seq]}, Stamps as arrays.
_clocks_decoder = msgspec.json.Decoder(dict[str, Stamp])


def now_utc() -> datetime:
    return datetime.now(UTC)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


def normalize(value: Any) -> Any:
    """Database values as the merge compares them: UUIDs as strings, datetimes in UTC."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is UTC:
            return value
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


# Values the database hands out as the merge compares them already (server/db reads
# UUIDs as strings on both engines).
_AS_IS = frozenset({str, int, float, bool, type(None)})
# Per table: (wire name, column, is JSON) for each field, worked out once.
_COLUMNS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    table: tuple(
        (name, db_column(table, name), spec.kind == "json") for name, spec in specs.items()
    )
    for table, specs in SPECS.items()
}
# Per table: the wire name of each column whose name differs.
_WIRE_NAME: dict[str, dict[str, str]] = {
    table: {column: name for name, column, _ in columns if column != name}
    for table, columns in _COLUMNS.items()
}


def to_json_text(value: Any) -> str:
    return _json.encode(value).decode()


def clocks_text(stamps: dict[str, Stamp]) -> str:
    return to_json_text(stamps)


def db_value(table: str, name: str, value: Any) -> Any:
    """A field's value as its column keeps it (JSON fields as text)."""
    if value is not None and SPECS[table][name].kind == "json":
        return to_json_text(value)
    return value


def column_value(record: StoredRecord, column: str) -> Any:
    """The value of one of the record's columns, bookkeeping columns included."""
    if column == "seq":
        return record.seq
    if column == "scope":
        return record.scope
    if column == "deleted":
        return record.deleted
    if column == "clocks":
        return clocks_text(record.stamps)
    if column in ("created_at", "updated_at"):
        return record.values[column]
    name = _WIRE_NAME[record.table].get(column, column)
    return db_value(record.table, name, record.values[name])


def record_from_row(table: str, row: dict[str, Any], *, with_stamps: bool = True) -> StoredRecord:
    """A database row as the engine sees it; reads that only show the row to a client skip
    decoding the per-field stamps (`with_stamps=False`)."""
    values: dict[str, Any] = {}
    for name, column, is_json in _COLUMNS[table]:
        value = row[column]
        if value.__class__ not in _AS_IS:
            value = normalize(value)
        if is_json and value is not None:
            value = msgspec.json.decode(value)
        values[name] = value
    values["created_at"] = normalize(row["created_at"])
    values["updated_at"] = normalize(row["updated_at"])
    stamps = _clocks_decoder.decode(row["clocks"]) if with_stamps else {}
    return StoredRecord(
        table=table,
        id=str(row["id"]),
        values=values,
        stamps=stamps,
        deleted=bool(row["deleted"]),
        seq=int(row["seq"]),
        scope=row["scope"],
    )


def wire_row(record: StoredRecord) -> dict[str, Any]:
    """The whole row as clients see it."""
    return {"id": record.id, **record.values}


class WireRowCache:
    """Rows as clients see them, by version (epoch, table, id, seq), so that a change pulled
    by many devices (a team's phones after a wave of writes) is read and converted once.
    A version never changes, so entries are never stale, on one server or many; the oldest
    go first when it is full. Entries are shared: never modify one.

    Full is counted in bytes, not entries (`budget`, FIELDCRM_ROW_CACHE_MB): one rep's
    notes of 20,000 characters would otherwise fill 50,000 entries with gigabytes. An
    entry's size is estimated from its JSON (entry_bytes()), an upper bound of what it
    holds; a row larger than the whole budget is not kept.

    Each is kept as a tuple of the row's JSON, its column names (one tuple per shape, shared)
    and its values, which the garbage collector stops tracking at its next pass, as nothing
    in it can form a cycle. A dict in it would keep it tracked: tens of thousands of
    tracked entries made every full collection take tens of ms, in the middle of requests."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.bytes = 0  # the estimated size of what it holds
        self._rows: dict[
            tuple[str, str, str, int],
            tuple[msgspec.Raw, tuple[str, ...], tuple[Any, ...], int],
        ] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        # Records erased on request (SPEC section 12): never kept again, whoever read them.
        self._erased: set[str] = set()

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def entry_bytes(json_bytes: int, values: int) -> int:
        """An entry's estimated memory, an upper bound: its JSON (whose buffer msgspec may
        have made up to half again as long), its values again as Python objects (no larger
        than their UTF-8 in the JSON, plus each object's header) and the key."""
        return 3 * json_bytes + 64 * values + 320

    def get(self, key: tuple[str, str, str, int]) -> WireRow | None:
        entry = self._rows.get(key)
        if entry is None:
            return None
        raw, names, values, _ = entry
        return WireRow(json=raw, packed=(names, values))

    def put(self, key: tuple[str, str, str, int], row: WireRow) -> None:
        if key[2] in self._erased:
            return
        rows = self._rows
        raw = row.json()
        values = row.values
        size = self.entry_bytes(len(raw), len(values))
        if size > self.budget:
            return
        old = rows.pop(key, None)
        if old is not None:
            self.bytes -= old[3]
        while rows and self.bytes + size > self.budget:
            self.bytes -= rows.pop(next(iter(rows)))[3]
        names = tuple(values)
        names = self._names.setdefault(names, names)
        rows[key] = (raw, names, tuple(values.values()), size)
        self.bytes += size

    def forget(self, ids: Iterable[str]) -> None:
        """Drop every version of these records and keep none of them from now on: they
        were erased on request, and a read that began before the erasure committed must
        not put one back."""
        gone = set(ids)
        self._erased |= gone
        for key in [key for key in self._rows if key[2] in gone]:
            self.bytes -= self._rows.pop(key)[3]

    def resize(self, budget: int) -> None:
        """A new budget (the settings'), the oldest entries dropped to fit it."""
        self.budget = budget
        rows = self._rows
        while rows and self.bytes > budget:
            self.bytes -= rows.pop(next(iter(rows)))[3]

    def clear(self) -> None:
        self._rows.clear()
        self._names.clear()
        self._erased.clear()
        self.bytes = 0


WIRE_ROWS = WireRowCache(128 * 2**20)  # resized to the settings' by create_app()
db.ON_CONFIGURE.append(WIRE_ROWS.clear)  # another database: its (epoch, seq)s may repeat


async def load_records(
    table: str, ids: Sequence[str], *, with_stamps: bool = True
) -> list[StoredRecord]:
    """The records with these ids as they are now (in the current transaction, if any)."""
    records: list[StoredRecord] = []
    for chunk in chunks(ids, IN_CHUNK):
        where, args = db.any_of("id", chunk)
        rows = await db.fetch(f"SELECT * FROM {table} WHERE {where}", *args)
        records += [record_from_row(table, row, with_stamps=with_stamps) for row in rows]
    return records


async def rows_by_version(
    epoch: str,
    table: str,
    versions: Sequence[tuple[str, int]],
    uncommitted: Mapping[Any, WireRow] | None = None,
) -> tuple[dict[str, WireRow], list[tuple[StoredRecord, WireRow]]]:
    """Rows as clients see them for these (id, seq) versions: those `uncommitted` (rows
    this transaction wrote, by version) or WIRE_ROWS holds, by id, and for the rest the
    records as they are now, each with its row. The caller decides whether to show those,
    and caches them only once what it read has committed."""
    cached: dict[str, WireRow] = {}
    missing: list[str] = []
    for record_id, seq in versions:
        version = (epoch, table, record_id, seq)
        row = uncommitted.get(version) if uncommitted else None
        row = row or WIRE_ROWS.get(version)
        if row is None:
            missing.append(record_id)
        else:
            cached[record_id] = row
    records = await load_records(table, missing, with_stamps=False) if missing else []
    return cached, [(record, WireRow(wire_row(record))) for record in records]


async def live_rows_in_scope(
    actor: Actor, table: str, ids: Sequence[str], columns: str = "*"
) -> dict[str, dict[str, Any]]:
    """The live rows of `table` with these ids that `actor` sees, by id; ids it does not
    see, or that do not exist, are simply absent. For a few hundred ids at most."""
    if not ids:
        return {}
    marks = ", ".join("{}" for _ in ids)
    sql = f"SELECT {columns} FROM {table} WHERE id IN ({marks}) AND deleted = {{}}"
    args: list[Any] = [*ids, False]
    if actor.scopes is not None:
        where, scope_args = scope_filter(actor.scopes)
        sql += f" AND {where}"
        args += scope_args
    return {str(row["id"]): row for row in await db.fetch(sql, *args)}
