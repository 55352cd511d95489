"""The sync engine's storage session over the process's database (SQLite or PostgreSQL):
one transaction, implementing `sync.engine.SyncSession` (whose docstrings are the
contract). It stores records and knows nothing of who may write what: the engine calls
the CRM's rules (server/core/rules.py) itself.

What a session keeps, for one transaction:
- counters: the seq it hands out and the server's clock (table sync_meta);
- records as the transaction has them (read once, kept up to date by its own writes);
- writes held back and sent together before the transaction's next statement
  (`db.defer`): new rows in one INSERT per table, changed rows in one UPDATE per table,
  with the clients' mids (server/core/changelog/clients.py);
- the change log's new entries (server/core/changelog/log.py), written before a pull;
- the writers' budgets and the records each scope holds, for the limits
  (server/core/usage.py), written with the rows;
- a history entry for every change it stores (server/core/history.py, docs/history.md),
  written with the rows, named by `source` (the one writer sets it; "sync" otherwise);
- rows as clients see them that it made or read, for its pulls and, once committed, for
  the cross-request cache `WIRE_ROWS`.
"""

from __future__ import annotations

import collections
import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from server import db
from server.core.actor import SERVER_CLIENT_ID, scope_domain, scopes_domains, team_domain
from server.core.changelog import log
from server.core.changelog.clients import PENDING_REPORTS, Clients, merge_report
from server.core.changelog.log import ChangeLog
from server.core.changelog.newest import CHANNEL, NEWEST, payload
from server.core.erased import erased_among, erased_marker
from server.core.fields import CHILD_TABLES, MERGEABLE, SERVER_MADE, SPECS, TABLES, db_column
from server.core.history import HistoryLog
from server.core.rows import (
    IN_CHUNK,
    chunks,
    clocks_text,
    column_value,
    db_value,
    load_records,
    now_ms,
    now_utc,
    record_from_row,
    rows_by_version,
    to_json_text,
    wire_row,
)
from server.core.usage import ScopeUsage, WriteBudgets
from sync.clock import Stamp, tick
from sync.cursor import Position, position
from sync.engine import DELETED_STAMP, Page, StoredRecord, WiderLock
from sync.merge import LostValue
from sync.protocol import Change, DeviceReport, Mutation, WireRow, canonical_uuid

# A device object as kept: every field, null when the phone sent none or a bad one.
_device_json = msgspec.json.Encoder()
# db.shared() key: sync_meta as the transaction has it (only sessions write sync_meta).
META = "sync_meta"
# Kept by every row, not fields anyone wrote: left out of a create's history entry.
_BOOKKEEPING = frozenset({"created_at", "updated_at"})
# PostgreSQL: how many seqs a session takes from the sequence at first, and at most at
# once (each block twice the last: a write of thousands takes a few round trips).
_FIRST_BLOCK = 8
_MAX_BLOCK = 1024
# A domain's counter only ever goes up (sessions committed together each write theirs).
_COUNTED = "ON CONFLICT (domain) DO UPDATE SET seq = GREATEST(sync_counters.seq, EXCLUDED.seq)"
_MOVE_COLUMNS = ("record_table", "record_id", "from_scope", "to_scope", "moved_at_ms", "seq")


# db.shared() key, PostgreSQL: what the committed members of a group handed out, for
# `commit_meta` (their highest seq, the highest clock, and per scope and per domain the
# highest seq).
COMMIT_META = "sync_meta at commit"
_META_KEYS = ("seq", "hlc_ms", "hlc_counter", "commits")


def note_committed(session: Session) -> None:
    """PostgreSQL: a write session's part is done (its last statement ran): what it handed
    out goes into its group's sync_meta update, which `commit_meta` writes just before the
    group commits."""
    shared = db.shared()
    seq, hlc = 0, (0, 0)
    scopes: dict[str, int] = {}
    domains: dict[str, int] = {}
    if COMMIT_META in shared:
        seq, hlc, scopes, domains = shared[COMMIT_META]
    _raise_to(scopes, session.log.newest)
    _raise_to(domains, session.domain_seqs)
    top = max(seq, session.current_seq)
    shared[COMMIT_META] = (top, max(hlc, session.hlc_max()), scopes, domains)
    db.at_commit(commit_meta)


def _raise_to(tops: dict[str, int], more: dict[str, int]) -> None:
    """Each key of `tops` at the greater of its seq and `more`'s."""
    for key, seq in more.items():
        if tops.get(key, 0) < seq:
            tops[key] = seq


async def commit_meta() -> None:
    """A group's last statements (PostgreSQL): sync_meta's seq and clock raised to what
    its members handed out, never lowered (writers of other teams commit in between), and,
    when they handed out seqs, its commit number raised by one and every process told
    (server/core/changelog/newest.py), in the same statement. The rows stay locked until
    the commit, so the commit numbers are in commit order, as the notifications are."""
    seq, hlc, scopes, domains = db.shared()[COMMIT_META]
    rows = await db.fetch(
        "SELECT key, value FROM sync_meta WHERE key IN ({}, {}, {}, {}) FOR UPDATE", *_META_KEYS
    )
    stored = {str(r["key"]): int(r["value"]) for r in rows}
    clock = max((stored["hlc_ms"], stored["hlc_counter"]), hlc)
    new = {
        "seq": max(stored["seq"], seq),
        "hlc_ms": clock[0],
        "hlc_counter": clock[1],
        "commits": stored.get("commits", 0) + (1 if domains else 0),
    }
    if new == stored:
        return
    update = (
        "UPDATE sync_meta SET value = CASE key WHEN 'seq' THEN {} WHEN 'hlc_ms' THEN {}"
        " WHEN 'hlc_counter' THEN {} ELSE {} END WHERE key IN ({}, {}, {}, {})"
    )
    args = [str(new[key]) for key in _META_KEYS] + list(_META_KEYS)
    if domains:
        update += " AND (SELECT pg_notify({}, {})::text) IS NOT NULL"
        args += [CHANNEL, payload(seq, scopes, new["commits"], domains)]
    await db.fetch(update, *args)


def device_json(device: DeviceReport | None) -> str | None:
    """A device report as sync_clients keeps it (None: the request sent none)."""
    if device is None:
        return None
    return _device_json.encode(msgspec.structs.asdict(device)).decode()


class Session:
    """One transaction: a write session holds a writer's lock (every domain's, or on
    PostgreSQL one team's: `team`) and hands out seqs."""

    def __init__(self, writable: bool, team: str | None = None) -> None:
        self.writable = writable
        # PostgreSQL: the one domain whose writer's lock this write session holds (a
        # team's, docs/sync-protocol.md "Writers per team"), or None: every domain's.
        self.team = team
        self.clients = Clients()
        self.log = ChangeLog()
        self.budgets = WriteBudgets()
        self.usage = ScopeUsage()
        # The history entries of this session's changes (server/core/history.py), and the
        # source they name: a phone's sync unless the one writer says otherwise.
        self.history = HistoryLog()
        self.source = "sync"
        # (table, id) -> the op and extra fields the next history entry of that record
        # takes instead of its own (a merge's writes: `label`).
        self._labels: dict[tuple[str, str], tuple[str, dict[str, dict[str, Any]]]] = {}
        # Accounts whose last visit is worked out once, at the end of a write that moves
        # many visits (a merge), instead of after each (None: after each).
        self.later_visits: set[str] | None = None
        # Held-back writes: new rows, (table, columns) -> rows of values; and changed
        # rows, (table, id) -> the columns to write (their values are the cached record's).
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
        # The change-log entries of the pulls `plan_pulls` read ahead, by pull, as of seq.
        self._planned: dict[tuple[tuple[str, ...] | None, Position, int, int], list[Any]] = {}
        self._planned_at = -1
        self.epoch = ""
        self.current_seq = 0
        self.purged_seq = 0
        self._hlc = (0, 0)
        self._meta_seq = 0
        self._meta_hlc = (0, 0)
        # PostgreSQL: seqs taken from the sequence and not handed out yet (highest first),
        # how many the next block takes, and per domain the newest seq this session
        # handed out (written to sync_counters at flush, up to `_counted`).
        self._spare: list[int] = []
        self._began_at = 0  # sync_meta.seq as the session began: every seq it takes is above
        self._block = _FIRST_BLOCK
        self.domain_seqs: dict[str, int] = {}
        self._counted: dict[str, int] = {}
        # sync_counters as this transaction read them, by the domains asked for (None:
        # all); pulls come after the session's writes, which `domain_seqs` adds.
        self._counts: dict[tuple[str, ...] | None, dict[str, int]] = {}
        # Records as they are in this transaction (None: there is none): read once, and
        # kept up to date by this session's own writes, so a request's writes cost a few
        # queries, not several each.
        self._cache: dict[tuple[str, str], StoredRecord | None] = {}
        # The server's time for this transaction when its caller fixes it (the one
        # writer's `now_ms`), else None: the wall clock.
        self.at_ms: int | None = None

    def time_ms(self) -> int:
        """The server's time for this transaction, in unix ms."""
        return self.at_ms if self.at_ms is not None else now_ms()

    async def begin(self) -> None:
        # A write session committed together with an earlier one (group commit) takes
        # the counters where that one left them in sync_meta.
        known = db.shared().get(META) if self.writable else None
        if known is None:
            rows = await db.fetch("SELECT key, value FROM sync_meta")
            meta = {r["key"]: r["value"] for r in rows}
            hlc = (int(meta["hlc_ms"]), int(meta["hlc_counter"]))
            known = (meta["epoch"], int(meta["seq"]), int(meta["purged_seq"]), hlc)
            if self.writable:
                NEWEST.began(known[1])
        self.epoch, self.current_seq, self.purged_seq, self._hlc = known
        self._began_at = self.current_seq
        self._meta_seq, self._meta_hlc = self.current_seq, self._hlc

    def stored_meta(self) -> tuple[str, int, int, tuple[int, int]]:
        """sync_meta as this session has left it in the transaction."""
        return (self.epoch, self._meta_seq, self.purged_seq, self._meta_hlc)

    async def flush(self) -> None:
        if not self.writable:
            return
        await self.log.write()
        counters = sorted(
            (domain, seq)
            for domain, seq in self.domain_seqs.items()
            if self._counted.get(domain, 0) < seq
        )
        if counters:
            await db.insert_rows("sync_counters", ("domain", "seq"), counters, upsert=_COUNTED)
            self._counted.update(counters)
        # On PostgreSQL what a group of write sessions hands out is written once, at its
        # end (`commit_meta`): its writers then hold sync_meta's rows a moment, not from
        # their first flush to the commit, and writers of other teams go on meanwhile.
        changed = (self.current_seq, self._hlc) != (self._meta_seq, self._meta_hlc)
        if changed and not db.is_postgres():
            update = (
                "UPDATE sync_meta SET value = CASE key WHEN 'seq' THEN {} WHEN 'hlc_ms' THEN {}"
                " ELSE {} END WHERE key IN ('seq', 'hlc_ms', 'hlc_counter')"
            )
            args = [str(self.current_seq), str(self._hlc[0]), str(self._hlc[1])]
            await db.fetch(update, *args)
        if self.current_seq != self._meta_seq:
            NEWEST.writing(self.current_seq, self.log.newest)
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

    async def next_seq(self, scope: str) -> int:
        """A fresh seq for a change-log entry in `scope`, greater than every seq committed
        in the scope's domain: on PostgreSQL from the sequence `sync_seq` (taken once the
        writer's lock is held, a block at a time), on SQLite the one writer's counter."""
        assert self.writable, "seqs are handed out in write sessions only"
        if not db.is_postgres():
            self.current_seq += 1
            return self.current_seq
        domain = await self._domain(scope)
        if self.team is not None and (domain != self.team or not await self._counted_team()):
            # Another team's domain, or one no write has counted yet (whose first seqs
            # only a writer holding every domain's lock may hand out): run again so.
            raise WiderLock(domain)
        if not self._spare:
            taken = await db.next_values("sync_seq", self._block)
            if taken[0] <= self._began_at:
                # Seqs written without the sequence (a bulk load's, a benchmark's): past them.
                await db.raise_sequence("sync_seq", self._began_at)
                taken = await db.next_values("sync_seq", self._block)
            self._spare = taken[::-1]
            self._block = min(self._block * 2, _MAX_BLOCK)
        seq = self._spare.pop()
        self.current_seq = max(self.current_seq, seq)
        if self.domain_seqs.get(domain, 0) < seq:
            self.domain_seqs[domain] = seq
        return seq

    async def _counted_team(self) -> bool:
        """Whether the team this session holds has a counter row (read once per group: the
        lock keeps it so)."""
        key = ("counted", self.team)
        shared = db.shared()
        if key not in shared:
            rows = await db.fetch("SELECT seq FROM sync_counters WHERE domain = {}", self.team)
            shared[key] = bool(rows)
        return bool(shared[key])

    async def _domain(self, scope: str) -> str:
        """The domain of `scope` (server/core/actor.py's `scope_domain`), found once per
        session: a user's own scope is in their team's."""
        domain = self.log.domains.get(scope)
        if domain is None:
            found = scope_domain(scope)
            if found is None:
                found = team_domain(await self.team_of(scope.partition(":")[2]))
            domain = self.log.domains[scope] = found
        return domain

    def observe_hlc(self, hlc: tuple[int, int]) -> None:
        self._hlc = max(self._hlc, hlc)

    def hlc_max(self) -> tuple[int, int]:
        return self._hlc

    def server_hlc(self, now_ms: int) -> tuple[int, int]:
        """The server's own clock for a write of its own: past every clock it has seen."""
        self._hlc = tick(self._hlc, now_ms)
        return self._hlc

    # -- exactly-once ----------------------------------------------------------------

    async def load_clients(self, clients: Sequence[tuple[str, str]]) -> None:
        await self.clients.load(clients)
        if self.writable:
            self.budgets.expect(user_id for user_id, _ in clients)

    def spend_budget(self, user_id: str, full_at_us: int) -> None:
        """A writer's new budget (server/core/limits.py), written with the batch's rows."""
        self.budgets.spend(user_id, full_at_us)
        db.defer(self._write_pending)

    async def last_mid(self, user_id: str, client_id: str) -> int:
        return await self.clients.last_mid(user_id, client_id)

    async def stored_results(
        self, user_id: str, client_id: str, mids: Sequence[int]
    ) -> dict[int, bytes]:
        return await self.clients.stored_results(user_id, client_id, mids)

    async def save_results(
        self,
        user_id: str,
        client_id: str,
        last_mid: int,
        results: list[tuple[int, bytes]],
        applied: int = 0,
    ) -> None:
        self.clients.save(user_id, client_id, last_mid, results, applied)
        db.defer(self._write_pending)

    def note_sync(
        self, user_id: str, client_id: str, device: DeviceReport | None, now_ms: int
    ) -> None:
        """Rule 14. A write session writes the report with its other rows; a read session
        (which takes no writer's lock) leaves it to `write_pending_reports`."""
        report = device_json(device)
        if self.writable:
            self.clients.note_sync(user_id, client_id, report, now_ms)
            db.defer(self._write_pending)
        else:
            merge_report(PENDING_REPORTS, (user_id, client_id), (now_ms, report))

    # -- reading records -------------------------------------------------------------

    async def load(self, table: str, record_id: str) -> StoredRecord | None:
        key = (table, record_id)
        if key not in self._cache:
            rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", record_id)
            if rows:
                self._cache[key] = record_from_row(table, rows[0])
            elif await erased_among(table, [record_id]):
                self._cache[key] = erased_marker(table, record_id)
            else:
                self._cache[key] = None
        return self._cache[key]

    async def prefetch(self, mutations: Sequence[Mutation]) -> None:
        """Load the records these mutations name, and the accounts they point at, in one
        query per table."""
        wanted: dict[str, set[str]] = {}
        for m in mutations:
            account_id = m.fields.get("account_id") if isinstance(m.fields, dict) else None
            for table, record_id in ((m.table, m.id), ("accounts", account_id)):
                if table not in TABLES or not isinstance(record_id, str):
                    continue
                try:
                    key = (table, canonical_uuid(record_id))
                except ValueError:
                    continue
                if key not in self._cache:
                    wanted.setdefault(table, set()).add(key[1])
        for table, ids in wanted.items():
            found: dict[str, StoredRecord] = {
                r.id: r for r in await self.load_many(table, sorted(ids))
            }
            # An id with no row may be one an erasure took (SPEC section 12).
            for record_id in await erased_among(table, sorted(ids - set(found))):
                found[record_id] = erased_marker(table, record_id)
            for record_id in ids:
                self._cache[(table, record_id)] = found.get(record_id)

    async def load_many(
        self, table: str, ids: Sequence[str], *, with_stamps: bool = True
    ) -> list[StoredRecord]:
        return await load_records(table, ids, with_stamps=with_stamps)

    async def team_of(self, user_id: str) -> str | None:
        """A user's team, read once per session."""
        if user_id not in self._teams:
            rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
            self._teams[user_id] = str(rows[0]["team_id"]) if rows else None
        return self._teams[user_id]

    # -- writing records -------------------------------------------------------------

    async def create(
        self, table: str, record_id: str, values: dict[str, Any], stamp: Stamp, scope: str
    ) -> None:
        seq = await self.next_seq(scope)
        stamp = stamp._replace(seq=seq)
        now = now_utc()
        stamps = dict.fromkeys(values, stamp)
        row = {"id": record_id, "created_at": now, "updated_at": now, "seq": seq}
        row.update(scope=scope, deleted=False, clocks=clocks_text(stamps))
        row.update({db_column(table, k): db_value(table, k, v) for k, v in values.items()})
        values = {**values, "created_at": now, "updated_at": now}
        self._insert(StoredRecord(table, record_id, values, stamps, False, seq, scope), row)
        self.log.put(table, record_id, seq, scope, "put")
        if table not in SERVER_MADE:
            self.usage.add(scope, 1)
            fields = {
                k: {"old": None, "new": v}
                for k, v in values.items()
                if v is not None and k not in _BOOKKEEPING
            }
            self._note(table, record_id, seq, now, stamp, "create", fields)

    async def update(
        self,
        record: StoredRecord,
        changed: dict[str, Any],
        stamps: dict[str, Stamp],
        scope: str,
    ) -> None:
        if not changed:
            # Only clocks moved (the same value written later): devices need nothing.
            merged = {**record.stamps, **{k: s._replace(seq=record.seq) for k, s in stamps.items()}}
            self._update(
                StoredRecord(
                    record.table,
                    record.id,
                    record.values,
                    merged,
                    record.deleted,
                    record.seq,
                    record.scope,
                ),
                {"clocks"},
            )
            return
        seq = await self.next_seq(scope)
        table = record.table
        values = {**record.values, **changed, "updated_at": now_utc()}
        merged = {**record.stamps, **{k: s._replace(seq=seq) for k, s in stamps.items()}}
        columns = {"updated_at", "seq", "clocks"}
        if scope != record.scope:
            # Only then: each index that starts with the scope is rewritten for every row
            # of the batch's UPDATE that names the column, changed or not (on SQLite).
            columns.add("scope")
        columns.update(db_column(table, name) for name in changed)
        self._update(
            StoredRecord(table, record.id, values, merged, record.deleted, seq, scope), columns
        )
        self.log.put(table, record.id, seq, scope, "put")
        stamp = next(iter(stamps.values()))
        if table not in SERVER_MADE:
            fields = {k: {"old": record.values.get(k), "new": v} for k, v in changed.items()}
            op = "update" if scope == record.scope else "move"
            self._note(table, record.id, seq, values["updated_at"], stamp, op, fields, record.seq)
        if scope != record.scope:
            self.log.evict(table, record.id, await self.next_seq(record.scope), record.scope)
            if table not in SERVER_MADE:
                self.usage.move(record.scope, scope)
            await self._move_dependents(record, scope, stamp)
            if table == "accounts":  # rule 11: what was written before the move still lands
                self._inserts.setdefault(("scope_moves", _MOVE_COLUMNS), []).append(
                    [table, record.id, record.scope, scope, self.time_ms(), seq]
                )
                db.defer(self._write_pending)

    async def evict_from(self, table: str, record_id: str, scope: str) -> None:
        """Tell the devices of `scope` to drop the record (written where they do not see)."""
        self.log.evict(table, record_id, await self.next_seq(scope), scope)

    async def delete(self, record: StoredRecord, stamp: Stamp) -> None:
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
        seq = await self.next_seq(record.scope)
        stamps = {**record.stamps, DELETED_STAMP: stamp._replace(seq=seq)}
        values = {**record.values, "updated_at": now_utc()}
        self._update(
            dataclasses.replace(record, values=values, stamps=stamps, deleted=True, seq=seq),
            {"deleted", "seq", "updated_at", "clocks"},
        )
        self.log.put(record.table, record.id, seq, record.scope, "delete")
        if record.table not in SERVER_MADE:
            self.usage.add(record.scope, -1)
            self._note(
                record.table, record.id, seq, values["updated_at"], stamp, "delete", {}, record.seq
            )

    async def expunge(
        self, records: Sequence[StoredRecord], user_id: str | None, *, erase: bool
    ) -> None:
        """Remove these records' rows whole, values and all: an erasure on request
        (`erase`, server/core/erasure.py) or conflicts past their retention.

        An erasure also removes every history entry of each record (and where retention
        cut its chain), leaving one `erase` entry by `user_id` that starts a new chain
        (docs/history.md), and replaces its change log entries with an `erase` entry in
        every scope the log had it in and in its own: devices there, and every admin's,
        drop it at their next sync (an evict marked `erased`), and later writes to it are
        refused (server/core/erased.py). Otherwise devices get a delete."""
        if not records:
            return
        ids = sorted({r.id for r in records})
        logged: dict[tuple[str, str], set[str]] = {}
        for chunk in chunks(ids, IN_CHUNK):
            where, args = db.any_of("record_id", chunk)
            if erase:
                rows = await db.fetch(
                    f"SELECT record_table, record_id, scope FROM sync_changes WHERE {where}",
                    *args,
                )
                for row in rows:
                    key = (row["record_table"], str(row["record_id"]))
                    logged.setdefault(key, set()).add(row["scope"])
                await db.fetch(f"DELETE FROM history WHERE {where}", *args)
                await db.fetch(f"DELETE FROM history_cuts WHERE {where}", *args)
        by_table: dict[str, list[str]] = {}
        for record in records:
            by_table.setdefault(record.table, []).append(record.id)
        for table, table_ids in by_table.items():
            for chunk in chunks(table_ids, IN_CHUNK):
                where, args = db.any_of("id", chunk)
                await db.fetch(f"DELETE FROM {table} WHERE {where}", *args)
        now = now_utc()
        stamp = Stamp(self.time_ms(), 0, SERVER_CLIENT_ID, user_id, 0)
        for record in records:
            key = (record.table, record.id)
            self._cache[key] = erased_marker(*key) if erase else None
            self._written.discard(key)
            self._updates.pop(key, None)
            for version in [v for v in self.wired if v[1:3] == key]:
                del self.wired[version]
            if not record.deleted and record.table not in SERVER_MADE:
                self.usage.add(record.scope, -1)
                db.defer(self._write_pending)
            if not erase:
                seq = await self.next_seq(record.scope)
                self.log.put(record.table, record.id, seq, record.scope, "delete")
                continue
            scopes = sorted(logged.get(key, set()) | {record.scope})
            entries = [(await self.next_seq(scope), scope) for scope in scopes]
            self.log.erase(record.table, record.id, entries)
            if record.table not in SERVER_MADE:
                self._note(record.table, record.id, entries[0][0], now, stamp, "erase", {})

    async def keep_lost(self, record: StoredRecord, lost: LostValue) -> None:
        """Write a conflicts row beside the record, seen by whoever sees the record."""
        if record.table in SERVER_MADE:
            return  # two people resolving the same conflict (or rejection) is not a conflict
        # The record as it is now: the write whose value lost may have moved it (a task
        # handed to someone else), and its conflicts go where it went.
        record = await self.load(record.table, record.id) or record
        seq = await self.next_seq(record.scope)
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
        stamps = dict.fromkeys(SPECS["conflicts"], Stamp(now_ms(), 0, SERVER_CLIENT_ID, None, seq))
        row = {"id": conflict_id, "created_at": now, "updated_at": now, "seq": seq}
        row.update(scope=record.scope, deleted=False, clocks=clocks_text(stamps), **values)
        # The record as a read of its row gives it (JSON fields decoded again).
        self._insert(record_from_row("conflicts", row), row)
        self.log.put("conflicts", conflict_id, seq, record.scope, "put")

    def label(self, table: str, record_id: str, op: str, fields: dict[str, dict[str, Any]]) -> None:
        """The next history entry of this record is `op`, with `fields` added to its own
        (a merge names what it merged); `unlabel` says whether it is still waiting."""
        self._labels[(table, record_id)] = (op, fields)

    def unlabel(self, table: str, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """The label of this record that no entry took yet, taken away."""
        return self._labels.pop((table, record_id), None)

    async def touch(
        self, record: StoredRecord, stamp: Stamp, op: str, fields: dict[str, dict[str, Any]]
    ) -> None:
        """A history entry for `record` without a change of its fields (a merge that kept
        every value of its survivor): the record gets a fresh seq, so its chain ends at it."""
        seq = await self.next_seq(record.scope)
        values = {**record.values, "updated_at": now_utc()}
        self._update(dataclasses.replace(record, values=values, seq=seq), {"seq", "updated_at"})
        self.log.put(record.table, record.id, seq, record.scope, "put")
        self._note(record.table, record.id, seq, values["updated_at"], stamp, op, fields)

    async def restore(
        self, record: StoredRecord, stamp: Stamp, fields: dict[str, dict[str, Any]]
    ) -> None:
        """Bring a merged-away tombstone back, its values and field stamps as they were
        (an undone merge: the one exception to rule 6), with a fresh seq, logged as a put
        and noted in its history as a `merge`."""
        seq = await self.next_seq(record.scope)
        stamps = {k: v for k, v in record.stamps.items() if k != DELETED_STAMP}
        values = {**record.values, "updated_at": now_utc()}
        self._update(
            dataclasses.replace(record, values=values, stamps=stamps, deleted=False, seq=seq),
            {"deleted", "seq", "updated_at", "clocks"},
        )
        self.log.put(record.table, record.id, seq, record.scope, "put")
        self.usage.add(record.scope, 1)
        self._note(record.table, record.id, seq, values["updated_at"], stamp, "merge", fields)

    def _note(
        self,
        table: str,
        record_id: str,
        seq: int,
        at: Any,
        stamp: Stamp,
        op: str,
        fields: dict[str, dict[str, Any]],
        prev_seq: int | None = None,
    ) -> None:
        """A history entry for a change this session stored (written with its rows);
        `prev_seq`: the record's seq before it (None for a create)."""
        label = self._labels.pop((table, record_id), None) if self._labels else None
        if label is not None:
            op, fields = label[0], {**fields, **label[1]}
        self.history.note(
            self.source,
            table,
            record_id,
            seq,
            at,
            stamp.user_id,
            stamp.client_id,
            op,
            fields,
            prev_seq,
        )
        db.defer(self._write_pending)

    async def _move_dependents(self, record: StoredRecord, scope: str, stamp: Stamp) -> None:
        """When an account changes team, what hangs off it moves too; the conflicts about
        each record that moves go with it (a task given to someone else takes its own)."""
        records = [record.id]
        if record.table == "accounts":
            for child in CHILD_TABLES:
                rows = await db.fetch(
                    f"SELECT id, scope, deleted, seq FROM {child} WHERE account_id = {{}}",
                    record.id,
                )
                records += [str(row["id"]) for row in rows]
                for row in rows:
                    await self._move_row(child, row, scope, stamp)
        # By their record, not by the account they name (the one their record was on when
        # they were made: it may have changed account since), since whoever sees the
        # record sees its conflicts.
        for chunk in chunks(records, IN_CHUNK):
            where, args = db.any_of("record_id", chunk)
            for row in await db.fetch(
                f"SELECT id, scope, deleted, seq FROM conflicts WHERE {where}", *args
            ):
                await self._move_row("conflicts", row, scope, stamp)

    async def _move_row(self, table: str, row: dict[str, Any], scope: str, stamp: Stamp) -> None:
        """One record (its id, scope, deleted, seq) moved to `scope` with a new seq there,
        unless it is in it already."""
        if row["scope"] == scope:
            return
        seq = await self.next_seq(scope)
        record_id = str(row["id"])
        await db.fetch(
            f"UPDATE {table} SET scope = {{}}, seq = {{}} WHERE id = {{}}", scope, seq, record_id
        )
        self._cache.pop((table, record_id), None)  # the next load reads it again
        self.log.put(table, record_id, seq, scope, "delete" if row["deleted"] else "put")
        self.log.evict(table, record_id, await self.next_seq(row["scope"]), row["scope"])
        if table not in SERVER_MADE:
            # It moved with its account: an entry without fields keeps its chain at its
            # seq (docs/history.md).
            self._note(table, record_id, seq, now_utc(), stamp, "move", {}, row["seq"])
        if table not in SERVER_MADE and not row["deleted"]:
            self.usage.move(row["scope"], scope)
            db.defer(self._write_pending)

    # -- held-back writes ------------------------------------------------------------

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
        self.log.created(record.table, record.id)
        self._inserts.setdefault((record.table, tuple(row)), []).append(list(row.values()))
        db.defer(self._write_pending)

    def _update(self, record: StoredRecord, columns: set[str]) -> None:
        """A record's new state: these columns of it are written with the batch."""
        self._keep(record)
        self._updates.setdefault((record.table, record.id), set()).update(columns)
        db.defer(self._write_pending)

    async def _write_pending(self) -> None:
        """Send the held-back writes: the clients' mids and results, new rows in one INSERT
        per table, then changed rows in one prepared UPDATE per table."""
        await self.clients.write()
        await self.budgets.write()
        await self.usage.write()
        await self.history.write(self.epoch)
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
                values.append([*(column_value(record, c) for c in written), record_id])
            await db.update_rows(table, written, values)

    # -- pull ------------------------------------------------------------------------

    async def plan_pulls(
        self, pulls: Sequence[tuple[tuple[str, ...] | None, Position, int, int]]
    ) -> None:
        """Read the change-log entries of the coming pulls whose scopes are all exact (a
        rep's: team, self, own refused writes) in one query, not one each: the union of
        their scopes after the earliest cursor, then each pull's own, in seq order. A pull
        whose page may reach past what the query read still reads its own."""
        self._planned = {}
        exact = [p for p in pulls if p[0] is not None and not any(s[-1:] == "*" for s in p[0])]
        if len(exact) < 2:
            return
        await self.log.write()
        union = sorted({scope for p in exact for scope in p[0] or ()})
        most = max(limit for _, _, limit, _ in exact) + 1
        rows = await log.read_scopes(
            union, min(p[1].lowest for p in exact), min(p[3] for p in exact), most
        )
        complete = len(rows) < most  # every entry of those scopes after the earliest cursor
        for key in exact:
            scopes, after, limit, fresh_until = key
            own = set(scopes or ())
            page = [
                row[:4]
                for row in rows
                if row[4] in own
                and row[0] > after.at(row[5])
                and (row[3] == "put" or row[0] > fresh_until)
            ][: limit + 1]
            if complete or len(page) > limit:
                self._planned[key] = page
        self._planned_at = self.current_seq

    async def pull(
        self, scopes: tuple[str, ...] | None, after: Position, limit: int, fresh_until: int
    ) -> Page:
        await self.log.write()
        planned = self._planned.get((scopes, after, limit, fresh_until))
        if planned is not None and self._planned_at == self.current_seq:
            rows: Sequence[Sequence[Any]] = planned
        else:
            rows = await log.read(scopes, after, fresh_until, limit + 1)
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
        merged: list[Change] = []  # deletes that may be merges (rule 13)
        made = self._changes
        for seq, table, record_id, op in rows[:limit]:
            change = made.get(seq)
            if change is not None:  # an earlier pull in this session has it, row and all
                changes.append(change)
                continue
            if op == "erase":  # an evict, marked: the record was erased on request
                change = Change(table=table, id=record_id, seq=seq, op="evict", row=None)
                change.erased = True
                made[seq] = change
                changes.append(change)
                continue
            change = made[seq] = Change(table=table, id=record_id, seq=seq, op=op, row=None)
            changes.append(change)
            if op == "delete" and table in MERGEABLE:
                merged.append(change)
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
        if merged:
            await _name_survivors(merged)
        last = int(rows[limit - 1][0]) if has_more else None
        moved = await self._moved_to(scopes, after, last)
        return Page(changes=changes, has_more=has_more, position=moved)

    async def _moved_to(
        self, scopes: tuple[str, ...] | None, after: Position, last: int | None
    ) -> Position | None:
        """Where a pull from `after` that read up to `last` (None: every entry there is)
        leaves its cursor, per domain (docs/sync-protocol.md, "The cursor"): each of the
        caller's domains at its counter in this snapshot, or at `last` when the page
        stopped before it; never back. None (the engine's rule, one order) on SQLite, which
        has one domain."""
        if not self._per_domain():
            return None
        domains = scopes_domains(scopes)
        seqs = {
            domain: max(after.at(domain), counter if last is None else min(last, counter))
            for domain, counter in (await self._counters(domains)).items()
        }
        if seqs:
            return position(seqs, max(after.seq, *seqs.values()))
        # None of the caller's domains has a counter yet: one writer, one order.
        return Position(max(after.seq, self.current_seq if last is None else last))

    async def _counters(self, domains: tuple[str, ...] | None) -> dict[str, int]:
        """The newest seq of each of these domains (None: every domain) that has one, as
        this transaction sees them (its own writes included)."""
        found = self._counts.get(domains)
        if found is None:
            if domains is None:
                rows = await db.fetch("SELECT domain, seq FROM sync_counters")
            elif domains:
                where, args = db.any_of("domain", domains)
                rows = await db.fetch(f"SELECT domain, seq FROM sync_counters WHERE {where}", *args)
            else:
                rows = []
            found = self._counts[domains] = {str(r["domain"]): int(r["seq"]) for r in rows}
        found = dict(found)
        for domain, seq in self.domain_seqs.items():
            if (domains is None or domain in domains) and found.get(domain, 0) < seq:
                found[domain] = seq
        return found

    def _per_domain(self) -> bool:
        """Whether seqs are in order per domain only (PostgreSQL: writers of different teams
        commit side by side), not across them (SQLite: one writer)."""
        return db.is_postgres()

    async def settled(self, scopes: tuple[str, ...] | None) -> int:
        """The lowest counter of the caller's domains in this transaction (every change of
        a domain up to its counter has committed, and a writer in flight holds greater
        seqs: its lock came after that commit), or `current_seq` with one order. A domain
        with no counter row has no writer in flight but one holding every lock, whose
        seqs are above every committed one."""
        if not self._per_domain():
            return self.current_seq
        counters = await self._counters(scopes_domains(scopes))
        return min(counters.values(), default=self.current_seq)

    async def holds(
        self, scopes: tuple[str, ...] | None, position: Position, fresh_until: int
    ) -> bool:
        """Whether this snapshot (a replica's) holds all a client at `position` has seen:
        with one order, its seq and `fresh_until` at or below `current_seq`; per domain,
        also each of the caller's domains at or below its counter here (a domain's
        counter covers all of the domain's changes up to it, whatever other domains
        committed)."""
        if max(position.seq, fresh_until) > self.current_seq:
            return False
        if not self._per_domain():
            return True
        counters = await self._counters(scopes_domains(scopes))
        return all(max(position.at(d), fresh_until) <= seq for d, seq in counters.items())


async def _name_survivors(deletes: list[Change]) -> None:
    """Rule 13: each delete of a record merged into another names its survivor."""
    ids = sorted({change.id for change in deletes})
    survivors: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        where, args = db.any_of("record_id", ids[start : start + 500])
        rows = await db.fetch(
            f"SELECT record_id, survivor_id FROM merged_records WHERE {where}", *args
        )
        survivors.update((str(r["record_id"]), str(r["survivor_id"])) for r in rows)
    for change in deletes:
        survivor = survivors.get(change.id)
        if survivor is not None:
            change.merged_into = survivor
