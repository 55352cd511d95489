"""One sync round trip: the client's writes go up, what it has not seen comes down.

The engine holds the protocol's rules (exactly-once, the clock clamp, per-field merge,
final deletes, the cursor); the server plugs in storage and the CRM's record rules
through `SyncStore` and `SyncSession`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from sync.clock import Stamp, effective_hlc
from sync.cursor import Cursor, decode_cursor
from sync.merge import LostValue, lost_to_delete, merge_fields
from sync.protocol import (
    MAX_PULL_LIMIT,
    Ack,
    Change,
    MidGap,
    Mutation,
    MutationError,
    MutationResult,
    Rejected,
    SyncRequest,
    SyncResponse,
)

MAX_CLOCK_PART = 2**53 - 1  # the largest whole number a JavaScript client holds exactly
DELETED_STAMP = "_deleted"  # the stamp of the delete, kept among a tombstone's stamps

_result_encoder = msgspec.json.Encoder()
_result_decoder = msgspec.json.Decoder(MutationResult)


class Actor(Protocol):
    """Who is syncing. The engine only needs the user's id; the rest is the store's."""

    @property
    def user_id(self) -> str: ...


@dataclass
class StoredRecord:
    """A record as the store keeps it, tombstones included."""

    table: str
    id: str
    values: dict[str, Any]
    stamps: dict[str, Stamp]
    deleted: bool
    seq: int
    scope: str


@dataclass(frozen=True)
class Page:
    changes: list[Change]
    has_more: bool


class SyncSession(Protocol):
    """One transaction on the store. Writes happen only in a write session, which holds
    the single writer's lock, so the seqs it hands out are in commit order."""

    tables: frozenset[str]
    epoch: str
    current_seq: int
    purged_seq: int

    async def load_clients(self, clients: Sequence[tuple[str, str]]) -> None:
        """Read the last mids of these (user_id, client_id)s in one go (a hint)."""

    async def last_mid(self, user_id: str, client_id: str) -> int: ...

    async def stored_results(
        self, user_id: str, client_id: str, mids: Sequence[int]
    ) -> dict[int, bytes]: ...

    async def save_results(
        self, user_id: str, client_id: str, last_mid: int, results: list[tuple[int, bytes]]
    ) -> None: ...

    def observe_hlc(self, hlc: tuple[int, int]) -> None: ...

    def hlc_max(self) -> tuple[int, int]: ...

    async def load(self, table: str, record_id: str) -> StoredRecord | None: ...

    async def prefetch(self, mutations: Sequence[Mutation]) -> None:
        """Load what these mutations will ask `load` for, in bulk (a hint)."""

    async def check_access(self, actor: Any, record: StoredRecord, op: str) -> None: ...

    async def prepare_create(
        self, actor: Any, table: str, record_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def prepare_update(
        self, actor: Any, record: StoredRecord, fields: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def create(
        self, actor: Any, table: str, record_id: str, values: dict[str, Any], stamp: Stamp
    ) -> None: ...

    async def update(
        self,
        actor: Any,
        record: StoredRecord,
        changed: dict[str, Any],
        stamps: dict[str, Stamp],
    ) -> None: ...

    async def delete(self, actor: Any, record: StoredRecord, stamp: Stamp) -> None: ...

    async def keep_lost(self, actor: Any, record: StoredRecord, lost: LostValue) -> None: ...

    async def pull(self, actor: Any, after: int, limit: int, fresh_until: int) -> Page: ...

    async def flush(self) -> None: ...


class SyncStore(Protocol):
    def write(self) -> AbstractAsyncContextManager[SyncSession]: ...

    def read(self) -> AbstractAsyncContextManager[SyncSession]: ...


def check_mids(mutations: Sequence[Mutation]) -> None:
    """Mids in one request must run on without gaps (1, 2, 3 ...)."""
    for before, after in zip(mutations, mutations[1:], strict=False):
        if after.mid != before.mid + 1:
            raise MidGap(before.mid + 1)


@dataclass(frozen=True)
class Exchange:
    """One sync request: who sent it, what it says, and the server's time when it came."""

    actor: Any
    request: SyncRequest
    now_ms: int


async def round_trip(
    store: SyncStore, actor: Any, request: SyncRequest, now_ms: int
) -> SyncResponse:
    """Apply the request's new mutations exactly once, then pull one page of changes,
    all in one transaction that commits before this returns."""
    [answer] = await round_trips(store, [Exchange(actor, request, now_ms)])
    if isinstance(answer, MidGap):
        raise answer
    return answer


async def round_trips(
    store: SyncStore,
    exchanges: Sequence[Exchange],
    more: Callable[[], Sequence[Exchange]] | None = None,
) -> list[SyncResponse | MidGap]:
    """Several round trips in one transaction that commits before this returns: each
    request's mutations are applied in turn, exactly as if the requests had come one after
    the other, then each pulls its page, so every pull sees all their writes. A request
    whose mids do not follow on gets its MidGap and changes nothing; the rest go on.

    `more`, if given, is asked for requests that came in meanwhile once the mutations of
    those before are applied, until it has none; they join and are answered after
    `exchanges`, in the order they were given. (Only a transaction that writes takes them:
    when none of `exchanges` has mutations, `more` is not asked.)"""
    if any(exchange.request.mutations for exchange in exchanges):
        session_cm = store.write()
    else:
        session_cm = store.read()
        more = None
    pushed: list[tuple[Exchange, Ack | MidGap]] = []
    async with session_cm as session:
        todo = list(exchanges)
        while todo:
            await _load(session, todo)
            for exchange in todo:
                try:
                    pushed.append((exchange, await _push(session, exchange)))
                except MidGap as gap:
                    pushed.append((exchange, gap))
            todo = list(more()) if more is not None else []
        answers: list[SyncResponse | MidGap] = []
        for exchange, ack in pushed:
            if isinstance(ack, MidGap):
                answers.append(ack)
                continue
            limit = max(1, min(exchange.request.pull_limit, MAX_PULL_LIMIT))
            changes, cursor, has_more, reset = await _pull(
                session, exchange.actor, exchange.request.cursor, limit
            )
            answers.append(
                SyncResponse(
                    ack=ack,
                    changes=changes,
                    cursor=cursor,
                    has_more=has_more,
                    reset=reset,
                    server_time=exchange.now_ms,
                    hlc_max=max(session.hlc_max(), (exchange.now_ms, 0)),
                )
            )
        await session.flush()
    return answers


async def _load(session: SyncSession, exchanges: Sequence[Exchange]) -> None:
    """Read in one go the clients' last mids and what their new mutations will load."""
    await session.load_clients(
        [(exchange.actor.user_id, exchange.request.client_id) for exchange in exchanges]
    )
    new = []
    for exchange in exchanges:
        last = await session.last_mid(exchange.actor.user_id, exchange.request.client_id)
        new += [m for m in exchange.request.mutations if m.mid > last]
    if new:
        await session.prefetch(new)


async def _push(session: SyncSession, exchange: Exchange) -> Ack:
    """Apply one request's new mutations, and answer its replayed ones as the first time."""
    actor, request, now_ms = exchange.actor, exchange.request, exchange.now_ms
    mutations = request.mutations
    check_mids(mutations)
    user_id, client_id = actor.user_id, request.client_id
    last = await session.last_mid(user_id, client_id)
    old = [m for m in mutations if m.mid <= last]
    new = [m for m in mutations if m.mid > last]
    if new and new[0].mid != last + 1:
        raise MidGap(last + 1)
    results = await _replayed(session, user_id, client_id, old, now_ms)
    fresh = [await _apply(session, actor, client_id, mutation, now_ms) for mutation in new]
    if new:
        last = new[-1].mid
        await session.save_results(
            user_id, client_id, last, [(r.mid, _result_encoder.encode(r)) for r in fresh]
        )
    return Ack(last_mid=last, results=results + fresh)


async def _replayed(
    session: SyncSession, user_id: str, client_id: str, old: list[Mutation], now_ms: int
) -> list[MutationResult]:
    if not old:
        return []
    stored = await session.stored_results(user_id, client_id, [m.mid for m in old])
    results = []
    for mutation in old:
        raw = stored.get(mutation.mid)
        if raw is None:
            # Results are kept for the newest mids only; an older one was applied long ago.
            result = MutationResult(
                mid=mutation.mid, status="applied", hlc=effective_hlc(mutation.hlc, now_ms)
            )
        else:
            result = _result_decoder.decode(raw)
        result.replayed = True
        results.append(result)
    return results


async def _apply(
    session: SyncSession, actor: Any, client_id: str, mutation: Mutation, now_ms: int
) -> MutationResult:
    hlc = effective_hlc(mutation.hlc, now_ms)
    try:
        status = await apply_mutation(session, actor, client_id, mutation, hlc)
    except Rejected as rejected:
        return MutationResult(
            mid=mutation.mid,
            status="rejected",
            hlc=hlc,
            error=MutationError(error=rejected.error, detail=rejected.detail),
        )
    return MutationResult(mid=mutation.mid, status=status, hlc=hlc)


async def apply_mutation(
    session: SyncSession,
    actor: Any,
    client_id: str,
    mutation: Mutation,
    hlc: tuple[int, int],
) -> str:
    """Apply one write with its effective clock; answer "applied" or "merged", or raise
    Rejected. Every check runs before the first write, so a rejection changes nothing
    but the conflicts rows rule 6 asks for."""
    if mutation.table not in session.tables:
        raise Rejected("unknown_table", f"There is no table {mutation.table[:50]!r}.")
    try:
        record_id = str(uuid.UUID(mutation.id))
    except ValueError:
        raise Rejected("invalid_id", "The record id must be a UUID.") from None
    if mutation.op not in ("upsert", "delete"):
        raise Rejected("invalid_op", "op must be 'upsert' or 'delete'.")
    if mutation.base_seq is not None and mutation.base_seq < 0:
        raise Rejected("invalid_base_seq", "base_seq must be a seq this client pulled.")
    if not all(0 <= part <= MAX_CLOCK_PART for part in mutation.hlc):
        # A clock a phone cannot have made; past 2^53 JavaScript cannot even hold it.
        raise Rejected("invalid_hlc", "hlc must be [unix ms, counter], from 0 to 2^53 - 1.")
    session.observe_hlc(hlc)
    stamp = Stamp(hlc[0], hlc[1], client_id, actor.user_id, 0)
    record = await session.load(mutation.table, record_id)

    if mutation.op == "delete":
        if record is None:
            raise Rejected("not_found", "There is no such record to delete.")
        await session.check_access(actor, record, "delete")
        if not record.deleted:
            await session.delete(actor, record, stamp)
        return "applied"

    if record is None:
        values = await session.prepare_create(actor, mutation.table, record_id, mutation.fields)
        await session.create(actor, mutation.table, record_id, values, stamp)
        return "applied"

    await session.check_access(actor, record, "upsert")
    if record.deleted:
        try:
            values = await session.prepare_update(actor, record, mutation.fields)
        except Rejected:
            values = {}
        deleted_by = record.stamps.get(DELETED_STAMP, stamp)
        for lost in lost_to_delete(record.values, deleted_by, values, stamp):
            await session.keep_lost(actor, record, lost)
        raise Rejected("deleted", "This record was deleted; the change was kept as a conflict.")
    values = await session.prepare_update(actor, record, mutation.fields)
    outcome = merge_fields(record.values, record.stamps, values, stamp, mutation.base_seq)
    if outcome.stamps:
        await session.update(actor, record, outcome.changed, outcome.stamps)
    for lost in outcome.lost:
        await session.keep_lost(actor, record, lost)
    return "merged" if outcome.some_lost else "applied"


async def _pull(
    session: SyncSession, actor: Any, cursor_text: str | None, limit: int
) -> tuple[list[Change], str, bool, bool]:
    cursor = decode_cursor(cursor_text)
    honoured = (
        cursor is not None
        and cursor.epoch == session.epoch
        and cursor.seq <= session.current_seq
        and (cursor.seq >= session.purged_seq or cursor.seq == 0)
    )
    if cursor is not None and honoured:
        position = cursor
    else:
        # A first sync, or a cursor we cannot honour: page the whole scope from the start.
        # Tombstones that exist now need not be sent to a client that starts from nothing.
        position = Cursor(session.epoch, 0, session.current_seq, cursor_text is not None)
    page = await session.pull(actor, position.seq, limit, position.fresh_until)
    if page.has_more:
        seq = page.changes[-1].seq
    else:
        seq = session.current_seq
    next_cursor = Cursor(session.epoch, seq, position.fresh_until, position.reset and page.has_more)
    return page.changes, next_cursor.encode(), page.has_more, position.reset
