"""Group commit for the writers: write transactions that arrive while their lane's writer
is busy run one after another in one database transaction and are committed together.

What callers rely on (each driver makes one Groups; write_transaction() and a write
outside a transaction on SQLite enter it through member()):
- Members run one at a time, on the one connection, under the writer's lock, in the order
  they arrived: what they hand out in turn (sequence numbers) is in commit order.
- Each member starts at a savepoint: one that fails undoes only its own part and gets its
  exception; the others go on.
- A member returns only after the group's commit, so its writes are durable when it
  returns. If the commit fails, or a member's part cannot be undone, every member fails
  and nothing of any of them stays.
- The members share one shared() dict (context.py); what a member left with at_commit()
  runs after the last member, before the commit.

Groups of different lanes run side by side (PostgreSQL: a team's writers, whose lock lets
other teams' writers through; lane None holds every lane's lock, docs/sync-protocol.md
"Writers per team"); each lane forms its own groups, one at a time.

A driver gives it three things (Backend): begin_group(lane) takes the lane's lock, begins
and sets the first savepoint, and returns the connection; end_group() commits or rolls
back and hands the connection back; statements() runs a few statements in one round trip.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.db.context import AT_COMMIT, Transaction, current_while, send_deferred


class Backend(Protocol):
    async def begin_group(self, lane: str | None) -> Any: ...

    async def end_group(self, conn: Any, commit: bool) -> None: ...

    async def statements(self, conn: Any, *sql: str) -> None: ...


@dataclass(eq=False)
class _Group:
    """Write transactions that run one after another in one database transaction and are
    committed together."""

    turns: collections.deque[asyncio.Future[Any]] = field(default_factory=collections.deque)
    open: bool = True  # still takes members
    done: asyncio.Future[None] | None = None  # set by the member whose turn it is
    committed: asyncio.Future[None] | None = None
    broken: BaseException | None = None  # a member could not undo its part
    clean: bool = True  # the savepoint "member" is set and nothing has run since
    shared: dict[Any, Any] = field(default_factory=dict)  # see shared()


class Groups:
    """Group commit for the single writer. Write transactions that arrive while the writer
    is busy (another group holds the lock or is committing) join the next group; its
    leader takes the lock, gives each member its turn on the one connection, inside a
    savepoint so that a member that fails undoes only its own part, and commits once for
    all: the lock, the begin and the sync to disk are paid once per group, not once per
    request. A member returns only after the commit, so each is durable when it returns;
    if the commit fails, every member fails and nothing of any of them is applied."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # Per event loop (tests run one loop per test), per lane: its writer's lock and
        # the group taking members.
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str | None, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()
        self._forming: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str | None, _Group]
        ] = weakref.WeakKeyDictionary()
        self._leaders: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """The writer's lock with no transaction: for what must run between two write
        transactions (SQLite's checkpoint of its log)."""
        async with self._lock(asyncio.get_running_loop(), None):
            yield

    def _lock(self, loop: asyncio.AbstractEventLoop, lane: str | None) -> asyncio.Lock:
        return self._locks.setdefault(loop, {}).setdefault(lane, asyncio.Lock())

    @asynccontextmanager
    async def member(self, lane: str | None = None) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        forming = self._forming.setdefault(loop, {})
        group = forming.get(lane)
        if group is None or not group.open:
            group = _Group(committed=loop.create_future())
            forming[lane] = group
            leader = loop.create_task(self._lead(loop, lane, group))
            self._leaders.add(leader)
            leader.add_done_callback(self._leaders.discard)
        turn: asyncio.Future[Any] = loop.create_future()
        group.turns.append(turn)
        try:
            conn = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._finish_turn(group)  # the turn came with the cancellation
            raise
        try:
            transaction = Transaction(conn, write=True, shared=group.shared)
            with current_while(transaction):
                # Each member starts at a savepoint: the leader sets the first with BEGIN;
                # after a member that succeeded it is moved up (in one round trip).
                if not group.clean:
                    await self.backend.statements(
                        conn, "RELEASE SAVEPOINT member", "SAVEPOINT member"
                    )
                group.clean = False
                try:
                    yield
                    await send_deferred(transaction)
                except BaseException:
                    try:
                        await self.backend.statements(conn, "ROLLBACK TO SAVEPOINT member")
                        group.clean = True  # back at the savepoint, which stays set
                    except BaseException as undo:
                        group.broken = undo
                    raise
        finally:
            self._finish_turn(group)
        assert group.committed is not None
        await asyncio.shield(group.committed)

    @staticmethod
    def _finish_turn(group: _Group) -> None:
        if group.done is not None and not group.done.done():
            group.done.set_result(None)

    async def _lead(self, loop: asyncio.AbstractEventLoop, lane: str | None, group: _Group) -> None:
        assert group.committed is not None
        try:
            async with self._lock(loop, lane):
                conn = await self.backend.begin_group(lane)
                commit = False
                try:
                    while group.broken is None:
                        if not group.turns:
                            await asyncio.sleep(0)  # one more round of the loop for latecomers
                            if not group.turns:
                                break
                        turn = group.turns.popleft()
                        if turn.done():
                            continue  # its member gave up waiting
                        group.done = loop.create_future()
                        turn.set_result(conn)
                        try:
                            await asyncio.shield(group.done)
                        except asyncio.CancelledError:
                            # The member still has the connection: let it finish first.
                            await asyncio.wait([group.done])
                            raise
                    if group.broken is not None:
                        raise group.broken
                    last = group.shared.get(AT_COMMIT)
                    if last is not None:
                        transaction = Transaction(conn, write=True, shared=group.shared)
                        with current_while(transaction):
                            await last()
                            await send_deferred(transaction)
                    commit = True
                finally:
                    group.open = False
                    await self.backend.end_group(conn, commit)
        except BaseException as exc:
            group.open = False
            for turn in group.turns:
                if not turn.done():
                    turn.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not group.committed.done():
                group.committed.set_exception(
                    exc if isinstance(exc, Exception) else RuntimeError("the writer stopped")
                )
            if not isinstance(exc, Exception):
                raise
        else:
            group.committed.set_result(None)
        finally:
            forming = self._forming.get(loop, {})
            if forming.get(lane) is group:
                del forming[lane]
