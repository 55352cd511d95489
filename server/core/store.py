"""The sync engine's storage on Piccolo's engine (SQLite or PostgreSQL), with the CRM's
record rules: who may write what, server-kept fields, and which scope a record is in."""

from __future__ import annotations

import collections
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core import rules
from server.core.actor import Actor, team_scope, user_scope
from server.core.fields import CHILD_TABLES, SPECS, TABLES, db_column
from sync.clock import Stamp, tick
from sync.engine import DELETED_STAMP, Page, StoredRecord
from sync.merge import LostValue
from sync.protocol import Change, Mutation, Rejected, WireRow

RESULTS_KEPT = 5000  # per client: replays older than this answer a generic "applied"
IN_CHUNK = 500

_json = msgspec.json.Encoder()
# A record's clocks: {"field": [ms, counter, client_id, user_id, seq]}, Stamps as arrays.
_clocks_decoder = msgspec.json.Decoder(dict[str, Stamp])


def now_utc() -> datetime:
    return datetime.now(UTC)


def normalize(value: Any) -> Any:
    """Database values as the merge compares them: UUIDs as strings, datetimes in UTC."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is UTC:
            return value
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


# Values the database hands out as the merge compares them already (server/db.py reads
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

    Each is kept as a tuple of the row's JSON, its column names (one tuple per shape, shared)
    and its values, which the garbage collector stops tracking at its next pass, as nothing
    in it can form a cycle. A dict in it would keep it tracked: tens of thousands of
    tracked entries made every full collection take tens of ms, in the middle of requests."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: dict[
            tuple[str, str, str, int], tuple[msgspec.Raw, tuple[str, ...], tuple[Any, ...]]
        ] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}

    def get(self, key: tuple[str, str, str, int]) -> WireRow | None:
        entry = self._rows.get(key)
        if entry is None:
            return None
        raw, names, values = entry
        return WireRow(json=raw, packed=(names, values))

    def put(self, key: tuple[str, str, str, int], row: WireRow) -> None:
        rows = self._rows
        if len(rows) >= self.size:
            del rows[next(iter(rows))]
        values = row.values
        names = tuple(values)
        names = self._names.setdefault(names, names)
        rows[key] = (row.json(), names, tuple(values.values()))

    def clear(self) -> None:
        self._rows.clear()
        self._names.clear()


WIRE_ROWS = WireRowCache(50_000)
db.ON_CONFIGURE.append(WIRE_ROWS.clear)  # another database: its (epoch, seq)s may repeat


def clocks_text(stamps: dict[str, Stamp]) -> str:
    return to_json_text(stamps)


# db.shared() key: sync_meta as the transaction has it (only sessions write sync_meta).
_META = "sync_meta"


class Session:
    """One transaction: a write session holds the writer's lock and hands out seqs."""

    tables = TABLES

    def __init__(self, writable: bool) -> None:
        self.writable = writable
        # Writes held back to be sent together before the transaction's next statement
        # (db.defer): new rows, (table, columns) -> rows of values; and changed rows,
        # (table, id) -> the columns to write (their values are the cached record's).
        self._inserts: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = {}
        self._updates: dict[tuple[str, str], set[str]] = {}
        # Records this session wrote, whose newest versions it knows (for WIRE_ROWS).
        self._written: set[tuple[str, str]] = set()
        self._teams: dict[str, str | None] = {}
        # Rows as clients see them, by version, that this session made or read: for its
        # pulls (one row object however many pull it) and, once the transaction has
        # committed, for WIRE_ROWS.
        self.wired: dict[tuple[str, str, str, int], WireRow] = {}
        # The changes this session's pulls made, by seq: in one transaction a seq always
        # names the same change, so the requests of a batch share them.
        self._changes: dict[int, Change] = {}
        # Each client's last mid as this transaction has it, and the results to store.
        self._last_mids: dict[tuple[str, str], int] = {}
        self._results: list[list[Any]] = []
        self._saved_clients: dict[tuple[str, str], int] = {}
        self.epoch = ""
        self.current_seq = 0
        self.purged_seq = 0
        self._hlc = (0, 0)
        self._meta_seq = 0
        self._meta_hlc = (0, 0)
        # Records as they are in this transaction (None: there is none): read once, and
        # kept up to date by this session's own writes, so a request's writes cost a few
        # queries, not several each.
        self._cache: dict[tuple[str, str], StoredRecord | None] = {}
        # The change log is written in bulk before a pull and at flush: per record, the
        # rows to add (seq, scope, op), and which stored rows go (None: its put or delete;
        # a scope: its evict from that scope).
        self._log_rows: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        self._log_gone: dict[tuple[str, str], set[str | None]] = {}
        # Records created since the log was last written: none of their rows are stored.
        self._new: set[tuple[str, str]] = set()

    async def begin(self) -> None:
        # A write session committed together with an earlier one (group commit) takes
        # the counters where that one left them in sync_meta.
        known = db.shared().get(_META) if self.writable else None
        if known is None:
            rows = await db.fetch("SELECT key, value FROM sync_meta")
            meta = {r["key"]: r["value"] for r in rows}
            hlc = (int(meta["hlc_ms"]), int(meta["hlc_counter"]))
            known = (meta["epoch"], int(meta["seq"]), int(meta["purged_seq"]), hlc)
        self.epoch, self.current_seq, self.purged_seq, self._hlc = known
        self._meta_seq, self._meta_hlc = self.current_seq, self._hlc

    def stored_meta(self) -> tuple[str, int, int, tuple[int, int]]:
        """sync_meta as this session has left it in the transaction."""
        return (self.epoch, self._meta_seq, self.purged_seq, self._meta_hlc)

    async def flush(self) -> None:
        """Write the change log and the counters; part of the same transaction as the
        records."""
        if not self.writable:
            return
        await self._write_log()
        if (self.current_seq, self._hlc) != (self._meta_seq, self._meta_hlc):
            await db.fetch(
                "UPDATE sync_meta SET value = CASE key WHEN 'seq' THEN {} WHEN 'hlc_ms' THEN {}"
                " ELSE {} END WHERE key IN ('seq', 'hlc_ms', 'hlc_counter')",
                str(self.current_seq),
                str(self._hlc[0]),
                str(self._hlc[1]),
            )
        self._meta_seq, self._meta_hlc = self.current_seq, self._hlc
        # The rows this session wrote, as clients will pull them (a team's phones, next).
        for key in list(self._written):
            record = self._cache.get(key)
            if record is not None and not record.deleted:
                self._wire(record)
        self._written.clear()

    def _wire(self, record: StoredRecord) -> WireRow:
        """The row clients see for `record` as this transaction has it, made once: for the
        pulls in this session and, once the transaction has committed, for WIRE_ROWS."""
        key = (record.table, record.id)
        self._written.discard(key)
        version = (self.epoch, *key, record.seq)
        row = self.wired.get(version)
        if row is None:
            row = self.wired[version] = WireRow(wire_row(record))
        return row

    # -- clocks and seqs -------------------------------------------------------------

    def next_seq(self) -> int:
        assert self.writable, "seqs are handed out in write sessions only"
        self.current_seq += 1
        return self.current_seq

    def observe_hlc(self, hlc: tuple[int, int]) -> None:
        self._hlc = max(self._hlc, hlc)

    def hlc_max(self) -> tuple[int, int]:
        return self._hlc

    def server_hlc(self, now_ms: int) -> tuple[int, int]:
        """The server's own clock for a REST write: past every clock it has seen."""
        self._hlc = tick(self._hlc, now_ms)
        return self._hlc

    # -- exactly-once ----------------------------------------------------------------

    async def load_clients(self, clients: Sequence[tuple[str, str]]) -> None:
        wanted = sorted({key for key in clients if key not in self._last_mids})
        for chunk in _chunks(wanted, IN_CHUNK // 2):
            if db.is_postgres():
                where = "(user_id, client_id) IN (SELECT * FROM unnest({}::uuid[], {}::text[]))"
                args: list[Any] = [[key[0] for key in chunk], [key[1] for key in chunk]]
            else:
                keys = db.padded(chunk)
                where = " OR ".join("(user_id = {} AND client_id = {})" for _ in keys)
                args = [part for key in keys for part in key]
            rows = await db.fetch(
                f"SELECT user_id, client_id, last_mid FROM sync_clients WHERE {where}", *args
            )
            found = {(str(r["user_id"]), r["client_id"]): int(r["last_mid"]) for r in rows}
            for key in chunk:
                self._last_mids[key] = found.get(key, 0)

    async def last_mid(self, user_id: str, client_id: str) -> int:
        key = (user_id, client_id)
        if key not in self._last_mids:
            await self.load_clients([key])
        return self._last_mids[key]

    async def stored_results(
        self, user_id: str, client_id: str, mids: Sequence[int]
    ) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for chunk in _chunks(list(mids), IN_CHUNK):
            where, args = db.any_of("mid", chunk)
            rows = await db.fetch(
                "SELECT mid, result FROM sync_results WHERE user_id = {} AND client_id = {}"
                f" AND {where}",
                user_id,
                client_id,
                *args,
            )
            found.update({int(r["mid"]): r["result"].encode() for r in rows})
        return found

    async def save_results(
        self, user_id: str, client_id: str, last_mid: int, results: list[tuple[int, bytes]]
    ) -> None:
        """Note the client's new last mid and its results; they are written with the
        batch's other rows (_write_pending), before the transaction's next statement."""
        key = (user_id, client_id)
        self._last_mids[key] = self._saved_clients[key] = last_mid
        self._results += [[user_id, client_id, mid, result.decode()] for mid, result in results]
        db.defer(self._write_pending)

    async def _write_clients(self) -> None:
        clients, self._saved_clients = self._saved_clients, {}
        results, self._results = self._results, []
        await db.insert_rows(
            "sync_clients",
            ("user_id", "client_id", "last_mid"),
            [[*key, last_mid] for key, last_mid in clients.items()],
            upsert="ON CONFLICT (user_id, client_id) DO UPDATE SET last_mid = excluded.last_mid",
        )
        await db.insert_rows("sync_results", ("user_id", "client_id", "mid", "result"), results)
        for (user_id, client_id), last_mid in clients.items():
            if last_mid > RESULTS_KEPT:
                await db.fetch(
                    "DELETE FROM sync_results WHERE user_id = {} AND client_id = {} AND mid <= {}",
                    user_id,
                    client_id,
                    last_mid - RESULTS_KEPT,
                )

    # -- records ---------------------------------------------------------------------

    async def load(self, table: str, record_id: str) -> StoredRecord | None:
        key = (table, record_id)
        if key not in self._cache:
            rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", record_id)
            self._cache[key] = record_from_row(table, rows[0]) if rows else None
        return self._cache[key]

    async def prefetch(self, mutations: Sequence[Mutation]) -> None:
        """Load the records these mutations name, and the accounts they point at, in one
        query per table."""
        wanted: dict[str, set[str]] = {}
        for m in mutations:
            account_id = m.fields.get("account_id") if isinstance(m.fields, dict) else None
            for table, record_id in ((m.table, m.id), ("accounts", account_id)):
                if table not in self.tables or not isinstance(record_id, str):
                    continue
                try:
                    key = (table, str(uuid.UUID(record_id)))
                except ValueError:
                    continue
                if key not in self._cache:
                    wanted.setdefault(table, set()).add(key[1])
        for table, ids in wanted.items():
            found = {r.id: r for r in await self.load_many(table, sorted(ids))}
            for record_id in ids:
                self._cache[(table, record_id)] = found.get(record_id)

    def _forget(self, table: str, record_id: str) -> None:
        """A record was written behind the cache's back: the next load reads it again."""
        self._cache.pop((table, record_id), None)

    def _keep(self, record: StoredRecord) -> None:
        """`record` as it now is in this transaction (its row is written before the
        transaction's next statement)."""
        key = (record.table, record.id)
        self._cache[key] = record
        self._written.add(key)

    def _insert(self, record: StoredRecord, row: dict[str, Any]) -> None:
        """A new record: its row (by column) goes with the batch's other new rows of its
        table in one INSERT."""
        self._keep(record)
        self._new.add((record.table, record.id))
        self._inserts.setdefault((record.table, tuple(row)), []).append(list(row.values()))
        db.defer(self._write_pending)

    def _update(self, record: StoredRecord, columns: set[str]) -> None:
        """A record's new state: these columns of it are written with the batch."""
        self._keep(record)
        self._updates.setdefault((record.table, record.id), set()).update(columns)
        db.defer(self._write_pending)

    async def team_of(self, user_id: str) -> str | None:
        """A user's team, read once per session."""
        if user_id not in self._teams:
            rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
            self._teams[user_id] = str(rows[0]["team_id"]) if rows else None
        return self._teams[user_id]

    async def load_many(
        self, table: str, ids: Sequence[str], *, with_stamps: bool = True
    ) -> list[StoredRecord]:
        return await load_records(table, ids, with_stamps=with_stamps)

    async def check_access(self, actor: Actor, record: StoredRecord, op: str) -> None:
        if not actor.sees(record.scope):
            raise Rejected("not_found", f"There is no {record.table[:-1]} with this id.")
        if op == "delete":
            rules.check_delete(actor, record)

    async def prepare_create(
        self, actor: Actor, table: str, record_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        return await rules.prepare_create(self, actor, table, fields)

    async def prepare_update(
        self, actor: Actor, record: StoredRecord, fields: dict[str, Any]
    ) -> dict[str, Any]:
        return await rules.prepare_update(self, actor, record, fields)

    async def create(
        self, actor: Actor, table: str, record_id: str, values: dict[str, Any], stamp: Stamp
    ) -> None:
        seq = self.next_seq()
        stamp = stamp._replace(seq=seq)
        full = await rules.complete_new(self, actor, table, values)
        scope = await self.scope_of(table, full)
        now = now_utc()
        stamps = dict.fromkeys(full, stamp)
        row = {"id": record_id, "created_at": now, "updated_at": now, "seq": seq}
        row.update(scope=scope, deleted=False, clocks=clocks_text(stamps))
        row.update({db_column(table, k): self._db_value(table, k, v) for k, v in full.items()})
        values = {**full, "created_at": now, "updated_at": now}
        self._insert(StoredRecord(table, record_id, values, stamps, False, seq, scope), row)
        await self._log(table, record_id, seq, scope, "put")

    async def _write_pending(self) -> None:
        """Send the held-back writes: new rows in one INSERT per table, then changed rows in
        one prepared UPDATE per table, then the clients' mids and results."""
        await self._write_clients()
        inserts, self._inserts = self._inserts, {}
        updates, self._updates = self._updates, {}
        for (table, columns), rows in inserts.items():
            await db.insert_rows(table, columns, rows)
        # One UPDATE per table, of every column some row of the batch changed: a row that
        # did not change one writes its current value (the cached record is the whole row).
        by_table: dict[str, dict[str, set[str]]] = {}
        for (table, record_id), names in updates.items():
            by_table.setdefault(table, {})[record_id] = names
        for table, changed in by_table.items():
            written = sorted(set().union(*changed.values()))
            values = []
            for record_id in changed:
                record = self._cache[(table, record_id)]
                assert record is not None
                values.append([*(self._column_value(record, c) for c in written), record_id])
            await db.update_rows(table, written, values)

    def _column_value(self, record: StoredRecord, column: str) -> Any:
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
        return self._db_value(record.table, name, record.values[name])

    async def update(
        self,
        actor: Actor,
        record: StoredRecord,
        changed: dict[str, Any],
        stamps: dict[str, Stamp],
    ) -> None:
        table = record.table
        if not changed:
            # Only clocks moved (the same value written later): devices need nothing.
            merged = {**record.stamps, **{k: s._replace(seq=record.seq) for k, s in stamps.items()}}
            self._update(dataclasses.replace(record, stamps=merged), {"clocks"})
            return
        seq = self.next_seq()
        changed = dict(changed)
        new_values = {**record.values, **changed}
        derived = await rules.derive(self, actor, record, changed, new_values)
        stamp = next(iter(stamps.values()))
        for name, value in derived.items():
            if record.values.get(name) != value:
                changed[name] = value
                stamps = {**stamps, name: stamp}
        new_values.update(derived)
        merged = {**record.stamps, **{k: s._replace(seq=seq) for k, s in stamps.items()}}
        scope = await self.scope_of(table, new_values, record.scope)
        new_values["updated_at"] = now_utc()
        columns = {"updated_at", "seq", "scope", "clocks"}
        columns.update(db_column(table, name) for name in changed)
        self._update(
            dataclasses.replace(record, values=new_values, stamps=merged, seq=seq, scope=scope),
            columns,
        )
        await self._log(table, record.id, seq, scope, "put")
        if scope != record.scope:
            await self._evict(table, record.id, record.scope)
            await self._move_dependents(record, scope)

    async def delete(self, actor: Actor, record: StoredRecord, stamp: Stamp) -> None:
        await self._tombstone(record, stamp)
        if record.table == "accounts":
            # What hangs off an account goes with it.
            for child in CHILD_TABLES:
                rows = await db.fetch(
                    f"SELECT * FROM {child} WHERE account_id = {{}} AND deleted = {{}}",
                    record.id,
                    False,
                )
                for row in rows:
                    await self._tombstone(record_from_row(child, row), stamp)

    async def _tombstone(self, record: StoredRecord, stamp: Stamp) -> None:
        seq = self.next_seq()
        stamps = {**record.stamps, DELETED_STAMP: stamp._replace(seq=seq)}
        values = {**record.values, "updated_at": now_utc()}
        self._update(
            dataclasses.replace(record, values=values, stamps=stamps, deleted=True, seq=seq),
            {"deleted", "seq", "updated_at", "clocks"},
        )
        await self._log(record.table, record.id, seq, record.scope, "delete")

    async def keep_lost(self, actor: Actor, record: StoredRecord, lost: LostValue) -> None:
        """Write a conflicts row beside the record, seen by whoever sees the record."""
        if record.table == "conflicts":
            return  # two people resolving the same conflict is not itself a conflict
        # The record as it is now: the write whose value lost may have moved it (a task
        # handed to someone else), and its conflicts go where it went.
        record = await self.load(record.table, record.id) or record
        seq = self.next_seq()
        now = now_utc()
        conflict_id = str(uuid.uuid4())
        account_id = record.id if record.table == "accounts" else record.values.get("account_id")
        values = {
            "record_table": record.table,
            "record_id": record.id,
            "account_id": account_id,
            "field": lost.field,
            "kept_value": to_json_text(lost.kept_value),
            "lost_value": to_json_text(lost.lost_value),
            "kept_hlc": to_json_text(list(lost.kept.hlc)),
            "lost_hlc": to_json_text(list(lost.lost.hlc)),
            "kept_by": lost.kept.user_id,
            "lost_by": lost.lost.user_id,
            "resolved": False,
        }
        stamps = dict.fromkeys(SPECS["conflicts"], Stamp(now_ms(), 0, "server", None, seq))
        row = {"id": conflict_id, "created_at": now, "updated_at": now, "seq": seq}
        row.update(scope=record.scope, deleted=False, clocks=clocks_text(stamps), **values)
        # The record as a read of its row gives it (JSON fields decoded again).
        self._insert(record_from_row("conflicts", row), row)
        await self._log("conflicts", conflict_id, seq, record.scope, "put")

    # -- scope -----------------------------------------------------------------------

    async def scope_of(self, table: str, values: dict[str, Any], current: str = "") -> str:
        """Which scope a record with these values is in."""
        if table == "conflicts":
            return current  # a conflict stays with its record, which moves it
        if table == "accounts":
            return team_scope(values["team_id"])
        account_id = values.get("account_id")
        if account_id is not None:
            account = await self.load("accounts", str(account_id))
            if account is not None:
                return account.scope
        person = values.get("assignee_id") or values.get("author_id")
        if table == "tasks" and person is not None:
            return user_scope(str(person))
        raise Rejected("not_found", "The account this belongs to does not exist.")

    async def _move_dependents(self, record: StoredRecord, scope: str) -> None:
        """When an account changes team, what hangs off it moves too; when another record
        changes scope (a task given to someone else), its conflicts go with it."""
        if record.table == "accounts":
            dependents = [(child, "account_id") for child in (*CHILD_TABLES, "conflicts")]
        else:
            dependents = [("conflicts", "record_id")]
        for child, column in dependents:
            rows = await db.fetch(
                f"SELECT id, scope, deleted FROM {child} WHERE {column} = {{}}", record.id
            )
            for row in rows:
                if row["scope"] == scope:
                    continue
                seq = self.next_seq()
                child_id = str(row["id"])
                await db.fetch(
                    f"UPDATE {child} SET scope = {{}}, seq = {{}} WHERE id = {{}}",
                    scope,
                    seq,
                    child_id,
                )
                self._forget(child, child_id)
                await self._log(child, child_id, seq, scope, "delete" if row["deleted"] else "put")
                await self._evict(child, child_id, row["scope"])

    async def _log(self, table: str, record_id: str, seq: int, scope: str, op: str) -> None:
        """Point the change log at the record's newest state. An earlier evict from the
        scope it is now in is dropped, so a puller gets the record once."""
        key = (table, record_id)
        rows = [r for r in self._log_rows.get(key, []) if r[2] == "evict" and r[1] != scope]
        self._log_rows[key] = [*rows, (seq, scope, op)]
        self._log_gone.setdefault(key, set()).update((None, scope))

    async def _evict(self, table: str, record_id: str, old_scope: str) -> None:
        seq = self.next_seq()
        key = (table, record_id)
        rows = [r for r in self._log_rows.get(key, []) if r[1:] != (old_scope, "evict")]
        self._log_rows[key] = [*rows, (seq, old_scope, "evict")]
        self._log_gone.setdefault(key, set()).add(old_scope)

    async def _write_log(self) -> None:
        """Write what _log and _evict noted: the same rows go and come as if each had
        written at once (stored rows only ever go, and rows noted in this session are
        already filtered), in a few statements. A record created since the log was last
        written has no stored rows to remove."""
        groups: dict[tuple[str, frozenset[str | None]], list[str]] = {}
        for (table, record_id), gone in self._log_gone.items():
            if (table, record_id) not in self._new:
                groups.setdefault((table, frozenset(gone)), []).append(record_id)
        for (table, dropped), ids in groups.items():
            scopes = sorted(scope for scope in dropped if scope is not None)
            which = ["op <> 'evict'"] if None in dropped else []
            if scopes:
                which.append(f"(op = 'evict' AND scope IN ({', '.join('{}' for _ in scopes)}))")
            for chunk in _chunks(ids, IN_CHUNK):
                where, args = db.any_of("record_id", chunk)
                await db.fetch(
                    f"DELETE FROM sync_changes WHERE record_table = {{}} AND {where}"
                    f" AND ({' OR '.join(which)})",
                    table,
                    *args,
                    *scopes,
                )
        rows = [
            [seq, table, record_id, scope, op]
            for (table, record_id), noted in self._log_rows.items()
            for seq, scope, op in noted
        ]
        await db.insert_rows(
            "sync_changes", ("seq", "record_table", "record_id", "scope", "op"), rows
        )
        self._log_rows.clear()
        self._log_gone.clear()
        self._new.clear()

    def _db_value(self, table: str, name: str, value: Any) -> Any:
        if value is not None and SPECS[table][name].kind == "json":
            return to_json_text(value)
        return value

    # -- pull ------------------------------------------------------------------------

    async def pull(self, actor: Actor, after: int, limit: int, fresh_until: int) -> Page:
        await self._write_log()
        scopes = actor.scopes
        if scopes is None:
            where, args = "op <> 'evict'", []
        else:
            where = f"scope IN ({', '.join('{}' for _ in scopes)})"
            args = list(scopes)
        rows = await db.fetch_rows(
            f"SELECT seq, record_table, record_id, op FROM sync_changes WHERE {where}"
            " AND seq > {} AND (op = 'put' OR seq > {}) ORDER BY seq LIMIT {}",
            *args,
            after,
            fresh_until,
            limit + 1,
        )
        has_more = len(rows) > limit
        # A put's seq is the seq of the row it names (a later write replaces the entry), so
        # (table, id, seq) is one version of a row: this session's own, else one written by
        # a request committed with this one, else from the cache or the table.
        epoch = self.epoch
        # Rows this session made or read, then those of the sessions committed with it.
        known = collections.ChainMap(self.wired, db.shared() if self.writable else {})
        changes = []
        wanted: dict[str, list[tuple[str, int]]] = {}
        waiting: dict[tuple[str, str], Change] = {}
        made = self._changes
        for seq, table, record_id, op in rows[:limit]:
            change = made.get(seq)
            if change is not None:  # an earlier pull in this session has it, row and all
                changes.append(change)
                continue
            change = made[seq] = Change(table=table, id=record_id, seq=seq, op=op, row=None)
            changes.append(change)
            if op != "put":
                continue
            mine = self._cache.get((table, record_id))
            if mine is not None and mine.seq == seq:
                change.row = self._wire(mine)
            else:
                wanted.setdefault(table, []).append((record_id, seq))
                waiting[(table, record_id)] = change
        for table, versions in wanted.items():
            cached, read = await rows_by_version(epoch, table, versions, known)
            for record_id, row in cached.items():
                waiting[(table, record_id)].row = row
            for record, wired in read:
                waiting[(table, record.id)].row = wired
                self.wired[(epoch, table, record.id, record.seq)] = wired
        return Page(changes=changes, has_more=has_more)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def load_records(
    table: str, ids: Sequence[str], *, with_stamps: bool = True
) -> list[StoredRecord]:
    """The records with these ids as they are now (in the current transaction, if any)."""
    records: list[StoredRecord] = []
    for chunk in _chunks(list(ids), IN_CHUNK):
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


class PiccoloSyncStore:
    """Sessions over the process's database engine."""

    _epoch: str | None = None

    async def epoch(self) -> str:
        """This database's identity (sync_meta), which never changes once made: read once
        per process and database."""
        if self._epoch is None:
            rows = await db.fetch("SELECT value FROM sync_meta WHERE key = 'epoch'")
            self._epoch = str(rows[0]["value"])
        return self._epoch

    def forget_epoch(self) -> None:
        self._epoch = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        async with db.write_transaction():
            session = Session(writable=True)
            await session.begin()
            yield session
            # For the sessions committed with this one (group commit), which see its rows
            # and continue its counters.
            shared = db.shared()
            shared.update(session.wired)
            shared[_META] = session.stored_meta()
        _keep_wired(session)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        async with db.read_transaction():
            session = Session(writable=False)
            await session.begin()
            yield session
        _keep_wired(session)


def _keep_wired(session: Session) -> None:
    """Cache the rows a session's pulls read, once its transaction has committed: after a
    rollback the same seqs are handed out again, to other versions."""
    for key, row in session.wired.items():
        WIRE_ROWS.put(key, row)


STORE = PiccoloSyncStore()
db.ON_CONFIGURE.append(STORE.forget_epoch)
