"""Sync requests that come in together are applied together.

When a team's phones come back into coverage at once, each with a few queued writes, the
writer would otherwise take them one at a time, each in its own turn with its own dozen
statements. A `Batcher` gives requests that arrive while the writer is busy to one
`round_trips` call instead: one transaction that loads their records in one go, applies
their mutations in arrival order, writes the rows of all of them in a few statements and
commits once. Requests that arrive while a batch is still applying mutations join it.
Each request's answer is exactly what it would have been had the requests come one after
another, except that every pull sees the writes of the whole batch.

If a batch fails, each of its requests runs again on its own, so that the one that failed
(a bug, a database error) fails alone. Requests without mutations do not wait for the
writer: they run on their own, in parallel.

A store may put writers in lanes (`lane_of(actor)`, `in_lane(lane)`: on PostgreSQL a
team's writers, whose writer's lock lets other teams' through): each lane batches and
writes on its own, beside the others. A batch that would write outside its lane's domain
(`WiderLock`) runs again, whole, in lane None, which holds every domain's lock.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any

from sync.engine import Exchange, SyncStore, WiderLock, in_lane, round_trip, round_trips
from sync.protocol import RequestRefused, SyncRequest, SyncResponse

MAX_BATCH_REQUESTS = 64
MAX_BATCH_MUTATIONS = 2000  # a batch takes at least one request, however large


@dataclass(eq=False)
class _Waiting:
    exchange: Exchange
    answer: asyncio.Future[SyncResponse]


@dataclass(eq=False)
class _Queue:
    waiting: list[_Waiting] = field(default_factory=list)
    running: bool = False  # a task is taking batches off this queue


class Batcher:
    def __init__(self, store: SyncStore) -> None:
        self.store = store
        # Per event loop (tests run one loop per test), per lane.
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, _Queue]] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def round_trip(self, actor: Any, request: SyncRequest, now_ms: int) -> SyncResponse:
        """As sync.engine.round_trip, in the next batch when the request has mutations."""
        if not request.mutations:
            return await round_trip(self.store, actor, request, now_ms)
        loop = asyncio.get_running_loop()
        lane = in_lane(self.store, actor)
        queue = self._queues.setdefault(loop, {}).setdefault(lane, _Queue())
        waiting = _Waiting(Exchange(actor, request, now_ms), loop.create_future())
        queue.waiting.append(waiting)
        if not queue.running:
            queue.running = True
            task = loop.create_task(self._drain(queue, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiting.answer

    async def _drain(self, queue: _Queue, lane: SyncStore) -> None:
        try:
            while queue.waiting:
                # Requests whose bodies were read in this round of the loop join too.
                await asyncio.sleep(0)
                batch = _take(queue, [])
                if batch:
                    await self._run(batch, queue, lane)
        except BaseException as exc:
            for waiting in queue.waiting:
                _fail(waiting.answer, exc)
            queue.waiting.clear()
            raise
        finally:
            queue.running = False

    async def _run(
        self, batch: list[_Waiting], queue: _Queue | None = None, lane: SyncStore | None = None
    ) -> None:
        """Answer `batch` (in `lane`: the store its write sessions use, by default the
        Batcher's) and, if `queue` is given, those that join it from the queue while its
        mutations are applied (a request read a moment after the batch began need not
        wait for the whole batch to commit)."""

        def more() -> list[Exchange]:
            joining = _take(queue, batch) if queue is not None else []
            return [waiting.exchange for waiting in joining]

        store = lane if lane is not None else self.store
        try:
            answers = await round_trips(store, [w.exchange for w in batch], more)
        except WiderLock:
            if store is self.store:
                raise
            # Nothing of the batch was applied: again, whole, holding every domain's lock.
            await self._run(batch)
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0].answer, exc)
                return
            # Nothing of the batch was applied: each again on its own, so that only the
            # request that failed fails.
            for waiting in batch:
                await self._run([waiting], lane=lane)
            return
        except BaseException as exc:  # cancelled: the server is stopping
            for waiting in batch:
                _fail(waiting.answer, exc)
            raise
        for waiting, answer in zip(batch, answers, strict=True):
            if isinstance(answer, RequestRefused):
                _fail(waiting.answer, answer)
            elif not waiting.answer.done():
                waiting.answer.set_result(answer)


def _take(queue: _Queue, batch: list[_Waiting]) -> list[_Waiting]:
    """Move the oldest waiting requests into `batch`, up to its limits, and return them;
    those whose caller gave up waiting are dropped (their requests were never applied,
    and will be sent again)."""
    taken: list[_Waiting] = []
    mutations = sum(len(w.exchange.request.mutations) for w in batch)
    rest: list[_Waiting] = []
    for waiting in queue.waiting:
        if waiting.answer.done():
            continue
        size = len(waiting.exchange.request.mutations)
        full = len(batch) >= MAX_BATCH_REQUESTS or mutations + size > MAX_BATCH_MUTATIONS
        if (batch and full) or rest:
            rest.append(waiting)
            continue
        batch.append(waiting)
        taken.append(waiting)
        mutations += size
    queue.waiting = rest
    return taken


def _fail(answer: asyncio.Future[SyncResponse], exc: BaseException) -> None:
    if answer.done():
        return
    if isinstance(exc, Exception):
        answer.set_exception(exc)
    else:
        answer.set_exception(RuntimeError("the sync writer stopped"))
