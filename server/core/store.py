"""The sync engine's store (`sync.engine.SyncStore`) over the process's database: write
and read sessions (server/core/session.py), with the CRM's rules (server/core/rules.py)
for the engine to call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server import db
from server.core.actor import Actor, team_domain
from server.core.changelog.clients import PENDING_REPORTS, merge_report
from server.core.changelog.newest import NEWEST
from server.core.rows import WIRE_ROWS
from server.core.rules import RULES, CrmRules
from server.core.session import META, Session, device_json, note_committed
from sync.engine import Quiet
from sync.protocol import DeviceReport


class PiccoloSyncStore:
    """Sessions over the process's database engine."""

    rules: CrmRules = RULES
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

    def lane_of(self, actor: Actor) -> str | None:
        """The writer's lane of `actor`'s sync writes (sync.batching): on PostgreSQL a
        rep's or a manager's team (their writes take their team's lock and run beside
        other teams', docs/sync-protocol.md "Writers per team"); None, every domain's
        lock, for an admin, the server, and on SQLite."""
        if not db.is_postgres() or actor.scopes is None:
            return None
        return team_domain(actor.team_id)

    def in_lane(self, lane: str | None) -> PiccoloSyncStore:
        """This store, its write sessions in `lane` (None: this store)."""
        if lane is None:
            return self
        store = _LANES.get(lane)
        if store is None:
            store = _LANES[lane] = _LaneStore(lane)
        return store

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        async with self._write(None) as session:
            yield session

    @asynccontextmanager
    async def _write(self, lane: str | None) -> AsyncIterator[Session]:
        async with db.write_transaction(lane):
            session = Session(writable=True, team=lane)
            await session.begin()
            yield session
            # For the sessions committed with this one (group commit), which see its rows
            # and continue its counters.
            shared = db.shared()
            shared.update(session.wired)
            shared[META] = session.stored_meta()
            if db.is_postgres():
                note_committed(session)
        _keep_wired(session)
        session.history.committed(session.epoch)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        async with db.read_transaction():
            session = Session(writable=False)
            await session.begin()
            yield session
        _keep_wired(session)

    async def quiet(
        self, scopes: tuple[str, ...] | None, user_id: str, client_id: str, after: int
    ) -> Quiet | None:
        """From what this process knows of each scope's newest seq (changelog/newest.py)
        and one statement on the side connection, or None."""
        return await NEWEST.quiet(scopes, user_id, client_id, after)

    def note_sync(
        self, user_id: str, client_id: str, device: DeviceReport | None, now_ms: int
    ) -> None:
        merge_report(PENDING_REPORTS, (user_id, client_id), (now_ms, device_json(device)))


class _LaneStore(PiccoloSyncStore):
    """The store whose write sessions hold one team's writer's lock (`in_lane`)."""

    def __init__(self, lane: str) -> None:
        self.lane = lane

    async def epoch(self) -> str:
        return await STORE.epoch()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        async with self._write(self.lane) as session:
            yield session


_LANES: dict[str, _LaneStore] = {}


def _keep_wired(session: Session) -> None:
    """Cache the rows a session's pulls read, once its transaction has committed: after a
    rollback the same seqs are handed out again, to other versions."""
    for key, row in session.wired.items():
        WIRE_ROWS.put(key, row)


class ReplicaSyncStore(PiccoloSyncStore):
    """Read sessions on the streaming replica (server/db/replica.py), for pulls without
    mutations. Its snapshot may be older than what a client has seen: the engine checks
    (`round_trip(..., lagging=True)`). Raises db.ReplicaUnavailable when the replica
    cannot answer."""

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        raise RuntimeError("the replica is read-only: write on the primary")
        yield  # pragma: no cover

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        async with db.replica_read_transaction():
            session = Session(writable=False)
            await session.begin()
            yield session
        _keep_wired(session)


STORE = PiccoloSyncStore()
REPLICA_STORE = ReplicaSyncStore()
db.ON_CONFIGURE.append(STORE.forget_epoch)
