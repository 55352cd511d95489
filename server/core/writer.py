"""The one writer: every change the server makes to records on its own side goes through
here, whatever asks for it (REST, the demo loader, the geocoder, the reminder dispatcher,
import and merge), named by its `Source`.

    async with writing(Source.REST) as writer:
        status = await writer.apply(actor, Edit("accounts", account_id, {"name": "Laurent"}))

A write goes through the sync engine's `apply_mutation`, exactly as a phone's does: the
CRM's rules (who may write what, server-kept fields, scope), the per-field merge, a seq,
the change log, and so to every device that sees the record. What differs by source is
only the clock and the client id in the stamps (`Source`). Phones' writes come through
the sync endpoint into the same `apply_mutation`; what should happen for every write
whatever its origin (history, quotas) goes there or into the session's writes
(server/core/session.py), which both paths share.

A `Writer` is one write transaction: `writing` commits when the block ends, and rolls
everything back if it raises. Other SQL run inside the block (a job's own bookkeeping)
commits with it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from server import db
from server.core import limits
from server.core.actor import SERVER_CLIENT_ID, SYSTEM, Actor
from server.core.fields import MERGEABLE, SERVER_MADE
from server.core.rules import RULES, settle_last_visits
from server.core.session import Session
from server.core.store import STORE
from sync.clock import Stamp
from sync.engine import StoredRecord, apply_mutation
from sync.protocol import Mutation, Rejected


class Source(StrEnum):
    """Who asked for a server-side write."""

    REST = "rest"  # a person, through the REST API
    DEMO = "demo"  # `fieldcrm demo`
    GEOCODER = "geocoder"  # the background geocoder placing accounts
    REMINDER = "reminder"  # the reminder dispatcher marking tasks reminded
    REVIEW = "review"  # a manager applying a refused write again (SPEC 4 rule 12)
    IMPORT = "import"  # a file imported by a manager or an admin (SPEC section 8)
    CAMPAIGN = "campaign"  # a manager's campaign planning visits (docs/campaigns.md)
    UPLOAD = "upload"  # an attachment's bytes arrived: its rows say `uploaded` (section 13)
    ERASE = "erase"  # an admin erasing a record on request (SPEC section 12)
    RETENTION = "retention"  # the retention job removing conflicts past their time
    MERGE = "merge"  # records merged into one, or a merge undone (SPEC section 9)


# A source whose writes yield to people's: its stamps sit just past the fields' current
# ones (so its value replaces what is there now), with a client id that sorts before every
# device's, so any later write by a person wins, even one with the very same clock reading.
# Every other source writes with the server's clock, past every clock it has seen.
YIELDING = {Source.GEOCODER: "+geocoder"}
# Sources whose writes count against the writer's limits (server/core/limits.py): people's
# own writes. The server's jobs, the demo and a manager's review are not limited.
LIMITED = {Source.REST}


@dataclass(frozen=True)
class Edit:
    """One change to one record: an upsert of `fields` (creating the record if it does
    not exist) or a delete. `base_seq`: the version the change was made against (rule 5);
    by default the record as it is now, as the server sees it."""

    table: str
    id: str
    fields: dict[str, Any] = field(default_factory=dict)
    op: str = "upsert"
    base_seq: int | None = None


class Writer:
    def __init__(self, session: Session, source: Source) -> None:
        self.session = session
        self.source = source
        session.source = source.value  # what its history entries name
        self.client_id = YIELDING.get(source, SERVER_CLIENT_ID)

    def now_ms(self) -> int:
        """The server's time for this write transaction (`writing`'s `now_ms`, else the
        wall clock)."""
        return self.session.time_ms()

    async def load(self, table: str, record_id: str) -> StoredRecord | None:
        """A record as it is in this transaction (tombstones included)."""
        return await self.session.load(table, record_id)

    async def apply(
        self, actor: Actor, edit: Edit, *, label: dict[str, dict[str, Any]] | None = None
    ) -> str:
        """Apply `edit` as `actor` (a person, or `server.core.actor.SYSTEM` for the
        server's own jobs): "applied" or "merged", or raises `sync.protocol.Rejected`, or
        `sync.protocol.OverLimit` when the write passes the writer's limits (a LIMITED
        source): the block must then end, and nothing of it stays.

        `label`: the record's history entry for this write is a `merge`, with these extra
        fields (what was merged); an upsert that changes nothing still leaves it."""
        if label is None:
            return await self._apply(actor, edit)
        record_id = str(uuid.UUID(edit.id))
        self.session.label(edit.table, record_id, "merge", label)
        try:
            status = await self._apply(actor, edit)
        finally:
            waiting = self.session.unlabel(edit.table, record_id)
        if waiting is not None and edit.op == "upsert":
            record = await self.session.load(edit.table, record_id)
            assert record is not None and not record.deleted
            await self.session.touch(record, self._stamp(actor), "merge", label)
        return status

    async def _apply(self, actor: Actor, edit: Edit) -> str:
        if edit.table not in RULES.tables:  # before any SQL names it
            raise Rejected("unknown_table", f"There is no table {edit.table[:50]!r}.")
        try:
            record = await self.session.load(edit.table, str(uuid.UUID(edit.id)))
        except ValueError:
            raise Rejected("invalid_id", "The record id must be a UUID.") from None
        hlc = self._clock(record, edit)
        base_seq = edit.base_seq
        if base_seq is None and record is not None:
            base_seq = record.seq
        mutation = Mutation(
            mid=0,
            table=edit.table,
            id=edit.id,
            op=edit.op,
            fields=edit.fields,
            base_seq=base_seq,
            hlc=hlc,
        )
        if self.source in LIMITED:
            await limits.admit(self.session, actor, [mutation], self.now_ms())
        return await apply_mutation(self.session, RULES, actor, self.client_id, mutation, hlc)

    async def apply_all(self, actor: Actor, edits: Sequence[Edit]) -> list[str]:
        """`apply` each edit in turn, loading the records they name in one go first."""
        await self.prefetch(edits)
        return [await self.apply(actor, edit) for edit in edits]

    async def flush(self) -> None:
        """Send this transaction's writes (rows, change log, history, counters) now rather
        than at the block's end, e.g. to time them; what follows in the block is sent then."""
        await self.session.flush()

    async def prefetch(self, edits: Sequence[Edit]) -> None:
        """Load the records `edits` name (and the accounts they point at) in one query per
        table, for a caller that applies them one by one, handling each refusal itself."""
        await self.session.prefetch(
            [
                Mutation(mid=0, table=e.table, id=e.id, op=e.op, fields=e.fields, hlc=(0, 0))
                for e in edits
            ]
        )

    def gather_last_visits(self) -> None:
        """From now until `settle_last_visits`, accounts' last visits are not kept after
        each write but gathered, to be read once each: for a write that moves many visits
        between accounts (a merge), where each would read the table again."""
        self.session.later_visits = set()

    async def settle_last_visits(self) -> None:
        """The last visit of each account `gather_last_visits` gathered, read and written."""
        await settle_last_visits(self.session)

    async def merge_away(
        self, actor: Actor, table: str, record_id: str, survivor_id: str, merge_id: str
    ) -> None:
        """Delete `record_id`, merged into `survivor_id` by merge `merge_id` (SPEC section
        9): devices get its delete with `merged_into`, and a later write to it lands on the
        survivor (rule 13). What hangs off it must have been moved first."""
        assert table in MERGEABLE
        label = {"merged_into": {"old": None, "new": survivor_id}}
        await self.apply(actor, Edit(table, record_id, op="delete"), label=label)
        await db.fetch(
            "INSERT INTO merged_records (record_id, record_table, survivor_id, merge_id)"
            " VALUES ({}, {}, {}, {})",
            record_id,
            table,
            survivor_id,
            merge_id,
        )

    async def merged_into(self, record_id: str) -> tuple[str, str] | None:
        """(the survivor, the merge) of a record merged away, while that merge stands."""
        rows = await db.fetch(
            "SELECT survivor_id, merge_id FROM merged_records WHERE record_id = {}", record_id
        )
        return (str(rows[0]["survivor_id"]), str(rows[0]["merge_id"])) if rows else None

    async def bring_back(self, actor: Actor, table: str, record_id: str) -> None:
        """Undo `merge_away`: the record is live again, its values and clocks as they were
        when it was merged, and writes to it land on it again."""
        record = await self.session.load(table, record_id)
        merged = await self.merged_into(record_id)
        if record is None or not record.deleted or merged is None:
            raise Rejected("not_found", f"{table}.{record_id} was not merged into another.")
        label = {"merged_into": {"old": merged[0], "new": None}}
        await self.session.restore(record, self._stamp(actor), label)
        await db.fetch("DELETE FROM merged_records WHERE record_id = {}", record_id)

    async def set_account(self, table: str, record_id: str, account_id: str) -> None:
        """Point a conflicts or rejections row (which only the server writes) at another
        account: a merge moves them with the rest. A conflict goes where the account is (a
        rejection stays with its writer)."""
        assert table in SERVER_MADE
        record = await self.session.load(table, record_id)
        if record is None or record.values.get("account_id") == account_id:
            return
        scope = record.scope
        if table == "conflicts":
            account = await self.session.load("accounts", account_id)
            scope = account.scope if account is not None else scope
        stamp = self._stamp(SYSTEM)
        await self.session.update(record, {"account_id": account_id}, {"account_id": stamp}, scope)

    def _stamp(self, actor: Actor) -> Stamp:
        """A stamp of the server's clock, for a change no field write makes."""
        ms, counter = self.session.server_hlc(self.now_ms())
        return Stamp(ms, counter, self.client_id, actor.user_id or None, 0)

    def _clock(self, record: StoredRecord | None, edit: Edit) -> tuple[int, int]:
        if self.source not in YIELDING:
            return self.session.server_hlc(self.now_ms())
        stamps = record.stamps if record is not None else {}
        held = [stamps[name] for name in edit.fields if name in stamps]
        latest = max(held, key=lambda stamp: stamp.key) if held else Stamp(0, 0, "", None, 0)
        return (latest.ms, latest.counter + 1)


@asynccontextmanager
async def writing(source: Source, *, now_ms: int | None = None) -> AsyncIterator[Writer]:
    """A write transaction for server-side writes from `source`; commits at the end of
    the block (after the change log and counters are written), rolls back if it raises.
    `now_ms` fixes the server's time for it (its clock, its limits, when a move it makes
    happened: rule 11), as a sync request's time is given to the engine; by default, the
    wall clock."""
    async with STORE.write() as session:
        session.at_ms = now_ms
        yield Writer(session, source)
        await RULES.settle(session)
        await session.flush()
