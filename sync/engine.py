"""One sync round trip: the client's writes go up, what it has not seen comes down.

The engine holds the protocol's rules (exactly-once, the clock clamp, per-field merge,
final deletes, the cursor). The server plugs in two things of its own:

- `SyncStore` / `SyncSession`: storage. A session is one database transaction; it reads
  and writes records, hands out seqs, keeps the change log and the exactly-once
  bookkeeping. It knows nothing of who may write what.
- `RecordRules`: the application's rules for records, which the engine calls around each
  write: who may write what, the fields the server keeps, and which scope a record is in.

A write goes: checks on the mutation (here) -> the rules check and clean the fields ->
the merge decides what changes (sync.merge) -> the rules derive server-kept fields and the
record's scope -> the session stores it. Every check runs before the first write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from sync.clock import Stamp, effective_hlc, valid_hlc
from sync.cursor import Cursor, Position, decode_cursor
from sync.merge import LostValue, lost_to_delete, merge_fields
from sync.protocol import (
    MAX_PULL_LIMIT,
    Ack,
    Change,
    DeviceReport,
    MidGap,
    Mutation,
    MutationError,
    MutationResult,
    Rejected,
    RequestRefused,
    SyncRequest,
    SyncResponse,
    canonical_uuid,
)

DELETED_STAMP = "_deleted"  # the stamp of the delete, kept among a tombstone's stamps

_result_encoder = msgspec.json.Encoder()
_result_decoder = msgspec.json.Decoder(MutationResult)


class Actor(Protocol):
    """Who is writing. The engine only needs the user's id (it goes into the stamps of
    what they write; empty for the server's own writes); the rest is the rules'."""

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
class Quiet:
    """What a store tells, without a transaction, of a client none of whose scopes has a
    change after its cursor (`SyncStore.quiet`): enough to answer its idle poll."""

    epoch: str
    seq: int  # the newest committed seq: no change in the scopes in (cursor, seq]
    purged_seq: int
    hlc_max: tuple[int, int]
    last_mid: int  # the client's last applied mid
    # Whether the cursor moves on to `seq`; False when the store keeps its order per
    # domain (a later seq of one domain may commit after `seq`): it stays where it was.
    moves: bool = True


class WiderLock(Exception):
    """A write session that holds one domain's writer's lock (a team's) was about to write
    in another domain: nothing of it stays, and its requests run again in a session that
    holds every domain's (`sync.batching`)."""


@dataclass(frozen=True)
class Page:
    changes: list[Change]
    has_more: bool
    # Where the cursor moves to, when the store keeps the order per domain (None: the
    # last change's seq, or `current_seq` after the last page).
    position: Position | None = None


class SyncSession(Protocol):
    """One transaction on the store, committed (or rolled back) when the context manager
    that made it exits. Writes happen only in a write session, which holds a writer's lock
    (the one writer's, or one domain's: `WiderLock`), so the seqs it hands out are in
    commit order within each domain it writes; a read session sees one snapshot. The
    engine calls, per round trip: `load_clients`, then per request `last_mid`,
    `stored_results` (replays), `prefetch`, then per mutation `load`, one of `create` /
    `update` / `delete` (with `keep_lost` for values that lost) and, once the write is
    applied, `observe_hlc`; `save_results` and `note_sync`; then `settled` (a first
    sync), `plan_pulls`, `pull` per request, and `flush` last.

    The contract suite (tests/contract/) runs every rule against both implementations
    (SQLite and PostgreSQL), through this interface."""

    epoch: str
    """The database's identity, fixed when it is made. A cursor from another epoch (a
    restored or replaced database) is not honoured: the client starts again from zero."""

    current_seq: int
    """The newest seq: every change up to it is in the change log, as this transaction
    sees it. A write session raises it as it writes."""

    purged_seq: int
    """Seqs at or below it may have been removed from the log (tombstones purged): a
    cursor older than it cannot be honoured."""

    async def load_clients(self, clients: Sequence[tuple[str, str]]) -> None:
        """A hint: read the last mids of these (user_id, client_id)s in one go, so the
        `last_mid` calls that follow need no query each. May do nothing."""

    async def last_mid(self, user_id: str, client_id: str) -> int:
        """The last mid applied for this client of this user (0: none yet), as this
        transaction has it, including `save_results` made earlier in it."""

    async def stored_results(
        self, user_id: str, client_id: str, mids: Sequence[int]
    ) -> dict[int, bytes]:
        """The results stored for these mids, by mid, as `save_results` got them. Only the
        newest results of a client need be kept: a mid missing here was applied long ago,
        and the engine answers it with a generic "applied"."""

    async def save_results(
        self,
        user_id: str,
        client_id: str,
        last_mid: int,
        results: list[tuple[int, bytes]],
        applied: int = 0,
    ) -> None:
        """Record that the client's mutations up to `last_mid` are applied, with their
        encoded results, in this transaction: they commit with the writes, or neither
        does (exactly-once rests on this). `applied`: how many of them were applied or
        merged (the server's own count of the client's writes, rule 14)."""

    def note_sync(
        self, user_id: str, client_id: str, device: DeviceReport | None, now_ms: int
    ) -> None:
        """Rule 14: this client of this user synced at `now_ms` (the server's time), with
        this device report (None: keep the last one). Called once per answered request, in
        a read session as in a write one; what a write session notes commits with it."""

    def observe_hlc(self, hlc: tuple[int, int]) -> None:
        """Note a write's effective clock; `hlc_max` is never below any observed one."""

    def hlc_max(self) -> tuple[int, int]:
        """The greatest clock the store has seen, sent to clients so that their next
        writes sort after everything they pulled."""

    async def load(self, table: str, record_id: str) -> StoredRecord | None:
        """The record as it is in this transaction (tombstones included; None if it never
        existed), reflecting this session's own writes. `record_id` is a canonical UUID
        string; `table` is one the rules accept."""

    async def prefetch(self, mutations: Sequence[Mutation]) -> None:
        """A hint: load in bulk what these mutations will ask `load` for. May do nothing;
        must ignore what it cannot parse (the mutation is rejected later)."""

    async def create(
        self, table: str, record_id: str, values: dict[str, Any], stamp: Stamp, scope: str
    ) -> None:
        """Store a new record with every field in `values` (complete: the rules filled in
        defaults and server-kept fields), each stamped `stamp` with a fresh seq, in
        `scope`, and log it as a put."""

    async def update(
        self,
        record: StoredRecord,
        changed: dict[str, Any],
        stamps: dict[str, Stamp],
        scope: str,
    ) -> None:
        """Write `changed` values and `stamps` (a superset of `changed`'s keys) into
        `record`. With nothing changed, only the stamps move: no new seq, nothing for
        devices. Otherwise the record gets a fresh seq and is logged as a put in `scope`;
        when `scope` differs from the record's, it is evicted from the old one, and what
        hangs off it (an account's visits, a record's conflicts) moves with it."""

    async def delete(self, record: StoredRecord, stamp: Stamp) -> None:
        """Make `record` a tombstone (final: rule 6) stamped `stamp`, with what hangs off
        it (an account's children), each with a fresh seq, logged as deletes."""

    async def keep_lost(self, record: StoredRecord, lost: LostValue) -> None:
        """Keep a value that lost a merge as a conflicts row beside the record (in the
        record's scope as it is now), logged as a put. Not for conflicts themselves."""

    async def pull(
        self, scopes: tuple[str, ...] | None, after: Position, limit: int, fresh_until: int
    ) -> Page:
        """Up to `limit` changes after `after` (each with a seq above its domain's seq
        there) in these scopes (None: every scope, but no evicts), in seq order, one per
        record (its newest), puts with their rows. Deletes and evicts at or below
        `fresh_until` are left out (a first sync needs none). Sees this session's writes,
        flushed first. The page's `position` is where its cursor moves (None: the engine's
        rule, for a store with one domain)."""

    async def plan_pulls(
        self, pulls: Sequence[tuple[tuple[str, ...] | None, Position, int, int]]
    ) -> None:
        """A hint: the `pull`s this session is about to make, in order, as (scopes, after,
        limit, fresh_until), with nothing written between. It may read what they need in
        one go (the requests of a batch); each `pull` must still answer exactly as alone.
        May do nothing."""

    async def flush(self) -> None:
        """Write what the session holds back (the change log, counters, rows) before the
        transaction commits. Called once, last."""

    async def settled(self, scopes: tuple[str, ...] | None) -> int:
        """A seq at or below which every change in these scopes has committed and is in
        this session's view, and any change still to commit there will have a greater
        one: a first sync's `fresh_until`. `current_seq` for a store with one order."""

    async def holds(
        self, scopes: tuple[str, ...] | None, position: Position, fresh_until: int
    ) -> bool:
        """Whether this session's view (a replica's snapshot) holds every change in these
        scopes a client at `position`, whose first sync began at `fresh_until`, has seen
        (`caught_up`)."""


class RecordRules(Protocol):
    """The application's rules for records. The engine calls them; the storage does not.
    Each may read through `session` (which is the store's own session type) and raises
    `Rejected` to refuse a write."""

    @property
    def tables(self) -> frozenset[str]:
        """The tables clients may write."""

    def scopes(self, actor: Any) -> tuple[str, ...] | None:
        """The scopes whose changes `actor` pulls; None for every scope."""

    async def check_access(
        self, session: Any, actor: Any, record: StoredRecord, op: str, at_ms: int
    ) -> None:
        """Refuse `op` ("upsert" or "delete") on an existing record `actor` may not touch.
        `at_ms`: the write's effective clock (where the record was when it was made)."""

    async def prepare_create(
        self, session: Any, actor: Any, table: str, fields: dict[str, Any], at_ms: int
    ) -> dict[str, Any]:
        """Check a new record's fields as written; return them as stored values."""

    async def prepare_update(
        self, session: Any, actor: Any, record: StoredRecord, fields: dict[str, Any], at_ms: int
    ) -> dict[str, Any]:
        """Check an update's fields as written; return them as stored values."""

    async def complete_new(
        self, session: Any, actor: Any, table: str, values: dict[str, Any], at_ms: int
    ) -> dict[str, Any]:
        """Every field of a new record: the written ones, defaults and server-kept ones.
        `at_ms`: the write's effective clock (when it was made, as far as the server
        believes it), for server-kept times such as when a task was done."""

    async def derive(
        self,
        session: Any,
        actor: Any,
        record: StoredRecord,
        changed: dict[str, Any],
        values: dict[str, Any],
        at_ms: int,
    ) -> dict[str, Any]:
        """Server-kept fields that follow from a change (`values`: the record after it;
        `at_ms`: the write's effective clock)."""

    async def scope_of(
        self, session: Any, table: str, values: dict[str, Any], current: str = ""
    ) -> str:
        """The scope a record with these values is in (`current`: where it is now)."""

    async def written(
        self,
        session: Any,
        actor: Any,
        table: str,
        record_id: str,
        scope: str,
        before: StoredRecord | None,
    ) -> None:
        """Called once a create, an update that changed values or a delete is stored, in
        `scope`: what follows from any write (the writer's devices dropping a record that
        landed out of their sight, server-kept fields of other records)
        goes here. `before`: the record as it was (None for a create); `session.load`
        gives it as it is now."""

    async def settle(self, session: Any) -> None:
        """Called once a request's new mutations are all applied (and at the end of every
        server-side write transaction): what follows from the request as a whole, which a
        later write of the same request could make unneeded (a task the server adds unless
        the phone sent one too) goes here, in the same transaction."""

    async def keep_rejected(
        self, session: Any, actor: Any, client_id: str, mutation: Mutation, rejected: Rejected
    ) -> None:
        """Called when a phone's mutation is refused (not a replay): keep it (rule 12)."""

    async def merged_into(self, session: Any, record: StoredRecord) -> StoredRecord | None:
        """Rule 13: the live record that `record` (a tombstone) was merged into, following
        merges of merges; None when it was deleted, not merged (or its survivor is gone
        too). An upsert to a merged-away record is applied to the survivor instead."""

    async def admit(
        self, session: Any, actor: Any, mutations: Sequence[Mutation], now_ms: int
    ) -> None:
        """Called with a request's new mutations (replays left out) before any of them is
        applied: raise `OverLimit` to refuse the request whole (a rate, a quota), with
        nothing of it applied and its mids not consumed. What it counts is written in
        `session`, so it commits with the writes it admitted, or not at all."""


class SyncStore(Protocol):
    @property
    def rules(self) -> RecordRules:
        """The rules the engine applies to this store's records."""

    def write(self) -> AbstractAsyncContextManager[SyncSession]:
        """A write session: holds the writer's lock until it commits."""

    def read(self) -> AbstractAsyncContextManager[SyncSession]:
        """A read session: one snapshot, no lock."""

    async def quiet(
        self, scopes: tuple[str, ...] | None, user_id: str, client_id: str, after: int
    ) -> Quiet | None:
        """Without a transaction, if the store can: a `Quiet` when no change with a seq
        above `after` in these scopes (None: every scope) had committed when this was
        called, else None (unsure is None). The engine answers idle polls from it. Optional:
        a store without it has every poll answered from a read session."""

    def note_sync(
        self, user_id: str, client_id: str, device: DeviceReport | None, now_ms: int
    ) -> None:
        """Rule 14 for a poll answered from `quiet`, as a read session's `note_sync`."""


def check_mids(mutations: Sequence[Mutation]) -> None:
    """Mids in one request must run on without gaps (1, 2, 3 ...)."""
    for before, after in zip(mutations, mutations[1:], strict=False):
        if after.mid != before.mid + 1:
            raise MidGap(before.mid + 1)


@dataclass(frozen=True)
class Outcome:
    """What became of one write: "applied" or "merged", and the survivor it was applied to
    when it named a merged-away record (rule 13)."""

    status: str
    redirected_to: str | None = None


@dataclass(frozen=True)
class Exchange:
    """One sync request: who sent it, what it says, and the server's time when it came."""

    actor: Any
    request: SyncRequest
    now_ms: int


class Behind(Exception):
    """A read session's snapshot is older than what the client has already seen (a
    replica that has not replayed that far): answer from a newer one."""


async def caught_up(
    session: SyncSession, scopes: tuple[str, ...] | None, cursor_text: str | None
) -> bool:
    """Whether `session`'s snapshot holds everything a client with this cursor, pulling
    these scopes, has seen, so that a pull from it neither takes the cursor back nor skips
    a change. A cursor that is not ours or from another epoch is a reset wherever it is
    answered; one of ours needs its position and the seq its first scan started from
    (`fresh_until`: tombstones up to it are left out, so they must be in the snapshot)
    held by the snapshot (`SyncSession.holds`)."""
    cursor = decode_cursor(cursor_text)
    if cursor is None or cursor.epoch != session.epoch:
        return True
    return await session.holds(scopes, cursor.position, cursor.fresh_until)


async def round_trip(
    store: SyncStore,
    actor: Any,
    request: SyncRequest,
    now_ms: int,
    *,
    lagging: bool = False,
) -> SyncResponse:
    """Apply the request's new mutations exactly once, then pull one page of changes,
    all in one transaction that commits before this returns (or in none: a poll with
    nothing new for it, `_idle_answer`). Raises `RequestRefused` (`MidGap`, `OverLimit`)
    when the request is refused whole.

    `lagging`: the store's read sessions may see an older snapshot than the client has
    (a streaming replica); the request must have no mutations, and `Behind` is raised,
    with nothing done, when the snapshot is not `caught_up` with its cursor."""
    exchange = Exchange(actor, request, now_ms)
    if not request.mutations:
        idle = await _idle_answer(store, actor, request, now_ms)
        if idle is not None:
            return idle
    elif (lane := in_lane(store, actor)) is not store:
        try:
            [answer] = await round_trips(lane, [exchange])
        except WiderLock:
            pass  # nothing of it was applied: again, holding every domain's lock
        else:
            if isinstance(answer, RequestRefused):
                raise answer
            return answer
    [answer] = await round_trips(store, [exchange], lagging=lagging)
    if isinstance(answer, RequestRefused):
        raise answer
    return answer


def in_lane(store: SyncStore, actor: Any) -> SyncStore:
    """The store whose write sessions hold `actor`'s writer's lane only, when the store
    has lanes (`lane_of`, `in_lane`: on PostgreSQL a team's lock, beside other teams'
    writers), else `store`. Writes outside the lane raise `WiderLock`."""
    lane_of = getattr(store, "lane_of", None)
    lane = lane_of(actor) if lane_of is not None else None
    return store if lane is None else store.in_lane(lane)  # type: ignore[attr-defined]


async def round_trips(
    store: SyncStore,
    exchanges: Sequence[Exchange],
    more: Callable[[], Sequence[Exchange]] | None = None,
    *,
    lagging: bool = False,
) -> list[SyncResponse | RequestRefused]:
    """Several round trips in one transaction that commits before this returns: each
    request's mutations are applied in turn, exactly as if the requests had come one after
    the other, then each pulls its page, so every pull sees all their writes. A request
    whose mids do not follow on gets its MidGap, one over a limit its OverLimit, and
    changes nothing; the rest go on.

    `more`, if given, is asked for requests that came in meanwhile once the mutations of
    those before are applied, until it has none; they join and are answered after
    `exchanges`, in the order they were given. (Only a transaction that writes takes them:
    when none of `exchanges` has mutations, `more` is not asked.)

    `lagging`: as in `round_trip`, for requests without mutations only."""
    if any(exchange.request.mutations for exchange in exchanges):
        if lagging:
            raise ValueError("a lagging store answers requests without mutations only")
        session_cm = store.write()
    else:
        session_cm = store.read()
        more = None
    pushed: list[tuple[Exchange, Ack | RequestRefused]] = []
    async with session_cm as session:
        if lagging:
            for exchange in exchanges:
                scopes = store.rules.scopes(exchange.actor)
                if not await caught_up(session, scopes, exchange.request.cursor):
                    raise Behind()
        todo = list(exchanges)
        while todo:
            await _load(session, todo)
            for exchange in todo:
                try:
                    pushed.append((exchange, await _push(session, store.rules, exchange)))
                except RequestRefused as refused:
                    pushed.append((exchange, refused))
                    continue
                request = exchange.request
                session.note_sync(
                    exchange.actor.user_id, request.client_id, request.device, exchange.now_ms
                )
            todo = list(more()) if more is not None else []
        # Where each answered request's pull starts, and how many changes it takes.
        pulls = [
            None
            if isinstance(ack, RequestRefused)
            else (
                await _position(
                    session, store.rules.scopes(exchange.actor), exchange.request.cursor
                ),
                max(1, min(exchange.request.pull_limit, MAX_PULL_LIMIT)),
            )
            for exchange, ack in pushed
        ]
        await session.plan_pulls(
            [
                (
                    store.rules.scopes(exchange.actor),
                    pull[0].position,
                    pull[1],
                    pull[0].fresh_until,
                )
                for (exchange, _), pull in zip(pushed, pulls, strict=True)
                if pull is not None
            ]
        )
        answers: list[SyncResponse | RequestRefused] = []
        for (exchange, ack), pull in zip(pushed, pulls, strict=True):
            if isinstance(ack, RequestRefused):
                answers.append(ack)
                continue
            assert pull is not None
            position, limit = pull
            changes, cursor, has_more = await _pull(
                session, store.rules, exchange.actor, position, limit
            )
            answers.append(
                SyncResponse(
                    ack=ack,
                    changes=changes,
                    cursor=cursor,
                    has_more=has_more,
                    reset=position.reset,
                    server_time=exchange.now_ms,
                    hlc_max=max(session.hlc_max(), (exchange.now_ms, 0)),
                )
            )
        await session.flush()
    return answers


async def _idle_answer(
    store: SyncStore, actor: Any, request: SyncRequest, now_ms: int
) -> SyncResponse | None:
    """The answer to a poll with nothing to push whose cursor is past every change its
    user sees, made without a transaction when the store can (`quiet`); None otherwise.
    It is the answer a read session would give: no changes, the cursor moved on to the
    newest seq, the client's last mid, the store's clock."""
    cursor = decode_cursor(request.cursor)
    if cursor is None or cursor.reset:
        return None
    ask = getattr(store, "quiet", None)  # optional: a store without it reads every poll
    if ask is None:
        return None
    quiet = await ask(store.rules.scopes(actor), actor.user_id, request.client_id, cursor.seq)
    if (
        quiet is None
        or quiet.epoch != cursor.epoch
        or cursor.seq > quiet.seq
        or (cursor.seq < quiet.purged_seq and cursor.seq != 0)
        or any(seq < quiet.purged_seq for _, seq in cursor.behind)
    ):
        return None
    store.note_sync(actor.user_id, request.client_id, request.device, now_ms)
    if quiet.moves:
        next_cursor = Cursor(quiet.epoch, quiet.seq, cursor.fresh_until, False)
    else:
        next_cursor = cursor._replace(reset=False)
    return SyncResponse(
        ack=Ack(last_mid=quiet.last_mid, results=[]),
        changes=[],
        cursor=next_cursor.encode(),
        has_more=False,
        reset=False,
        server_time=now_ms,
        hlc_max=max(quiet.hlc_max, (now_ms, 0)),
    )


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


async def _push(session: SyncSession, rules: RecordRules, exchange: Exchange) -> Ack:
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
    if new:
        await rules.admit(session, actor, new, now_ms)
    results = await _replayed(session, user_id, client_id, old, now_ms)
    fresh = [await _apply(session, rules, actor, client_id, mutation, now_ms) for mutation in new]
    if new:
        await rules.settle(session)
        last = new[-1].mid
        await session.save_results(
            user_id,
            client_id,
            last,
            [(r.mid, _result_encoder.encode(r)) for r in fresh],
            sum(r.status != "rejected" for r in fresh),
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
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    client_id: str,
    mutation: Mutation,
    now_ms: int,
) -> MutationResult:
    hlc = effective_hlc(mutation.hlc, now_ms)
    try:
        outcome = await apply_write(session, rules, actor, client_id, mutation, hlc)
    except Rejected as rejected:
        await rules.keep_rejected(session, actor, client_id, mutation, rejected)
        return MutationResult(
            mid=mutation.mid,
            status="rejected",
            hlc=hlc,
            error=MutationError(error=rejected.error, detail=rejected.detail),
        )
    result = MutationResult(mid=mutation.mid, status=outcome.status, hlc=hlc)
    if outcome.redirected_to is not None:
        result.redirected_to = outcome.redirected_to
    return result


async def apply_mutation(
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    client_id: str,
    mutation: Mutation,
    hlc: tuple[int, int],
) -> str:
    """`apply_write`'s status: "applied" or "merged", or raise Rejected."""
    return (await apply_write(session, rules, actor, client_id, mutation, hlc)).status


async def apply_write(
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    client_id: str,
    mutation: Mutation,
    hlc: tuple[int, int],
) -> Outcome:
    """Apply one write with its effective clock; answer what became of it, or raise
    Rejected. Every check runs before the first write, so a rejection changes nothing
    but the conflicts rows rule 6 asks for."""
    if mutation.table not in rules.tables:
        raise Rejected("unknown_table", f"There is no table {mutation.table[:50]!r}.")
    try:
        record_id = canonical_uuid(mutation.id)
    except ValueError:
        raise Rejected("invalid_id", "The record id must be a UUID.") from None
    if mutation.op not in ("upsert", "delete"):
        raise Rejected("invalid_op", "op must be 'upsert' or 'delete'.")
    if mutation.base_seq is not None and not 0 <= mutation.base_seq <= session.current_seq:
        # Rule 5: a client cannot claim to have seen what does not exist (and so overwrite
        # a colleague's value without a conflicts row).
        raise Rejected("invalid_base_seq", "base_seq must be a seq this client pulled.")
    if not valid_hlc(mutation.hlc):
        # Rule 3: a clock a phone cannot have made. It moves no clock.
        raise Rejected(
            "invalid_hlc",
            "hlc must be [unix ms, counter]: ms from 2000-01-01 to 2^53 - 1, counter below 2^31.",
        )
    stamp = Stamp(hlc[0], hlc[1], client_id, actor.user_id or None, 0)
    outcome = await _write(session, rules, actor, mutation, record_id, stamp)
    # Rule 3: the server's clock observes a write only once it is known to be valid.
    session.observe_hlc(stamp.hlc)
    return outcome


async def _write(
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    mutation: Mutation,
    record_id: str,
    stamp: Stamp,
) -> Outcome:
    """The checks that need the record, then the write itself."""
    record = await session.load(mutation.table, record_id)
    if record is not None and record.deleted and mutation.op == "upsert":
        # Rule 13: a write to a merged-away record lands on its survivor, as if it had
        # named it (a delete of one is done already: the merge deleted it).
        survivor = await rules.merged_into(session, record)
        if survivor is not None:
            await rules.check_access(session, actor, record, "upsert", stamp.ms)
            status = await _write_record(session, rules, actor, mutation, survivor, stamp)
            return Outcome(status, survivor.id)
    if record is None and mutation.op == "upsert":
        scope = await _create(
            session, rules, actor, mutation.table, record_id, mutation.fields, stamp, stamp.ms
        )
        await rules.written(session, actor, mutation.table, record_id, scope, None)
        return Outcome("applied")
    if record is None:
        raise Rejected("not_found", "There is no such record to delete.")
    return Outcome(await _write_record(session, rules, actor, mutation, record, stamp))


async def _write_record(
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    mutation: Mutation,
    record: StoredRecord,
    stamp: Stamp,
) -> str:
    """A write to an existing record: "applied" or "merged"."""
    at_ms = stamp.ms
    if mutation.op == "delete":
        await rules.check_access(session, actor, record, "delete", at_ms)
        if not record.deleted:
            await session.delete(record, stamp)
            await rules.written(session, actor, record.table, record.id, record.scope, record)
        return "applied"

    await rules.check_access(session, actor, record, "upsert", at_ms)
    if record.deleted:
        try:
            values = await rules.prepare_update(session, actor, record, mutation.fields, at_ms)
        except Rejected:
            values = {}
        deleted_by = record.stamps.get(DELETED_STAMP, stamp)
        for lost in lost_to_delete(record.values, deleted_by, values, stamp):
            await session.keep_lost(record, lost)
        raise Rejected("deleted", "This record was deleted; the change was kept as a conflict.")
    values = await rules.prepare_update(session, actor, record, mutation.fields, at_ms)
    outcome = merge_fields(record.values, record.stamps, values, stamp, mutation.base_seq)
    if outcome.stamps:
        scope = await _update(session, rules, actor, record, outcome.changed, outcome.stamps)
        if outcome.changed:
            await rules.written(session, actor, record.table, record.id, scope, record)
    for lost in outcome.lost:
        await session.keep_lost(record, lost)
    return "merged" if outcome.some_lost else "applied"


async def _create(
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    table: str,
    record_id: str,
    fields: dict[str, Any],
    stamp: Stamp,
    at_ms: int,
) -> str:
    """Store a new record; the scope it is in."""
    values = await rules.prepare_create(session, actor, table, fields, at_ms)
    full = await rules.complete_new(session, actor, table, values, stamp.ms)
    scope = await rules.scope_of(session, table, full)
    await session.create(table, record_id, full, stamp, scope)
    return scope


async def _update(
    session: SyncSession,
    rules: RecordRules,
    actor: Any,
    record: StoredRecord,
    changed: dict[str, Any],
    stamps: dict[str, Stamp],
) -> str:
    """Store a merge's outcome with the server-kept fields that follow from it, stamped
    as the write that caused them, in the scope the new values put the record in."""
    if changed:
        changed = dict(changed)
        values = {**record.values, **changed}
        stamp = next(iter(stamps.values()))
        derived = await rules.derive(session, actor, record, changed, values, stamp.ms)
        for name, value in derived.items():
            if record.values.get(name) != value:
                changed[name] = value
                stamps = {**stamps, name: stamp}
        values.update(derived)
        scope = await rules.scope_of(session, record.table, values, record.scope)
    else:
        scope = record.scope
    await session.update(record, changed, stamps, scope)
    return scope


async def _position(
    session: SyncSession, scopes: tuple[str, ...] | None, cursor_text: str | None
) -> Cursor:
    """Where a pull of these scopes starts: the client's cursor if it can be honoured,
    else from zero (`reset` when the client had a cursor)."""
    cursor = decode_cursor(cursor_text)
    honoured = (
        cursor is not None
        and cursor.epoch == session.epoch
        and cursor.seq <= session.current_seq
        and (cursor.seq >= session.purged_seq or cursor.seq == 0)
        and all(seq >= session.purged_seq for _, seq in cursor.behind)
    )
    if cursor is not None and honoured:
        return cursor
    # A first sync, or a cursor we cannot honour: page the whole scope from the start.
    # Tombstones that exist now need not be sent to a client that starts from nothing.
    return Cursor(session.epoch, 0, await session.settled(scopes), cursor_text is not None)


async def _pull(
    session: SyncSession, rules: RecordRules, actor: Any, position: Cursor, limit: int
) -> tuple[list[Change], str, bool]:
    page = await session.pull(rules.scopes(actor), position.position, limit, position.fresh_until)
    if page.position is not None:
        at = page.position
    elif page.has_more:
        at = Position(page.changes[-1].seq)
    else:
        at = Position(session.current_seq)
    reset = position.reset and page.has_more
    next_cursor = Cursor(session.epoch, at.seq, position.fresh_until, reset, at.behind)
    return page.changes, next_cursor.encode(), page.has_more
