"""The one writer: every change the server makes to records on its own side goes through
here, whatever asks for it (REST, the demo loader, the geocoder, the reminder dispatcher,
and later import and merge), named by its `Source`.

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

from server.core import limits
from server.core.actor import SERVER_CLIENT_ID, Actor
from server.core.rules import RULES
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

    async def apply(self, actor: Actor, edit: Edit) -> str:
        """Apply `edit` as `actor` (a person, or `server.core.actor.SYSTEM` for the
        server's own jobs): "applied" or "merged", or raises `sync.protocol.Rejected`, or
        `sync.protocol.OverLimit` when the write passes the writer's limits (a LIMITED
        source): the block must then end, and nothing of it stays."""
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
