"""Batches (sync/batching.py), on both engines: sync requests with mutations that come in
together are applied in one transaction, each answered as if it had come alone, and one
that fails or has a mid gap fails alone."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest

from server import db
from server.core.actor import Actor
from server.core.changelog import log
from server.core.store import STORE
from sync.batching import Batcher
from sync.cursor import decode_cursor
from sync.protocol import MidGap, SyncRequest, SyncResponse
from tests.contract.sim import Device, add_team, server_rows, wire

_request = msgspec.json.Decoder(SyncRequest)


class Watched:
    """The real store, counting the write transactions it opens. A session's create of an
    account named "poison" raises, as a bug or a database error would; one named "slow"
    takes 50 ms, and sets `slowed` when it starts."""

    rules = STORE.rules

    def __init__(self) -> None:
        self.writes = 0
        self.slowed = asyncio.Event()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        self.writes += 1
        async with STORE.write() as session:
            yield _Poisonable(session, self.slowed)

    def read(self) -> Any:
        return STORE.read()


class _Poisonable:
    def __init__(self, session: Any, slowed: asyncio.Event) -> None:
        self._session = session
        self._slowed = slowed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def create(self, table: str, record_id: str, values: Any, stamp: Any, scope: str) -> None:
        if values.get("name") == "poison":
            raise RuntimeError("poison")
        if values.get("name") == "slow":
            self._slowed.set()
            await asyncio.sleep(0.05)
        await self._session.create(table, record_id, values, stamp, scope)


def _new_accounts(device: Device, *names: str) -> list[str]:
    ids = []
    for name in names:
        ids.append(str(uuid.uuid4()))
        device.write("accounts", ids[-1], "upsert", {"name": name}, int(time.time() * 1000))
    return ids


async def _send(
    batcher: Batcher, sent: list[tuple[Actor, dict[str, Any]]]
) -> list[SyncResponse | BaseException]:
    """The requests at once, as requests read in one round of the server's loop."""
    now = int(time.time() * 1000)
    return await asyncio.gather(
        *(batcher.round_trip(actor, _request.decode(msgspec.json.encode(body)), now)
          for actor, body in sent),
        return_exceptions=True,
    )  # fmt: skip


async def _team(n: int) -> tuple[list[Actor], list[Device]]:
    _, actors = await add_team(["rep"] * n)
    return actors, [Device(actor.user_id) for actor in actors]


async def test_requests_that_come_in_together_are_applied_in_one_transaction(
    started_db: Any,
) -> None:
    actors, devices = await _team(6)
    made = [_new_accounts(device, f"A{i}", f"B{i}", f"C{i}") for i, device in enumerate(devices)]
    store = Watched()
    answers = await _send(
        Batcher(store), [(a, d.request()) for a, d in zip(actors, devices, strict=True)]
    )
    assert store.writes == 1
    every_id = {record_id for ids in made for record_id in ids}
    for answer, device in zip(answers, devices, strict=True):
        assert isinstance(answer, SyncResponse), answer
        assert answer.ack.last_mid == 3
        assert [r.status for r in answer.ack.results] == ["applied"] * 3
        # Each pull saw the whole batch's writes, in one page, ending where the others end.
        assert {c.id for c in answer.changes} == every_id
        assert answer.cursor == answers[0].cursor  # type: ignore[union-attr]
        device.receive(device.request(), wire(answer))
    for actor, device in zip(actors, devices, strict=True):
        assert device.rows == await server_rows(actor)


async def test_a_request_that_comes_in_while_a_batch_is_applied_joins_it(
    started_db: Any,
) -> None:
    actors, devices = await _team(2)
    made = _new_accounts(devices[0], "slow") + _new_accounts(devices[1], "Late")
    store = Watched()
    batcher = Batcher(store)
    now = int(time.time() * 1000)
    requests = [_request.decode(msgspec.json.encode(d.request())) for d in devices]
    first = asyncio.create_task(batcher.round_trip(actors[0], requests[0], now))
    await store.slowed.wait()  # the batch is applying the first request's mutations
    second = await batcher.round_trip(actors[1], requests[1], now)
    assert store.writes == 1
    for answer in (await first, second):
        assert [r.status for r in answer.ack.results] == ["applied"]
        assert {c.id for c in answer.changes} == set(made)


async def test_a_request_sent_twice_in_one_batch_is_applied_once(started_db: Any) -> None:
    actors, devices = await _team(2)
    (account,) = _new_accounts(devices[0], "Acme")
    body = devices[0].request()
    first, again = await _send(Batcher(STORE), [(actors[0], body), (actors[0], body)])
    assert isinstance(first, SyncResponse) and isinstance(again, SyncResponse)
    assert [r.replayed for r in first.ack.results] == [False]
    assert [(r.mid, r.status, r.hlc, r.replayed) for r in again.ack.results] == [
        (1, "applied", first.ack.results[0].hlc, True)
    ]
    assert wire(again.changes) == wire(first.changes)
    assert list(await server_rows(actors[1])) == [("accounts", account)]


async def test_one_that_fails_in_a_batch_fails_alone(started_db: Any) -> None:
    actors, devices = await _team(3)
    good = _new_accounts(devices[0], "Acme")
    _new_accounts(devices[1], "Bolt", "poison")
    later = _new_accounts(devices[2], "Cogs")
    store = Watched()
    answers = await _send(
        Batcher(store), [(a, d.request()) for a, d in zip(actors, devices, strict=True)]
    )
    assert isinstance(answers[0], SyncResponse)
    assert isinstance(answers[1], RuntimeError)
    assert isinstance(answers[2], SyncResponse)
    # The batch was undone and each ran again on its own: the failing one changed nothing.
    assert store.writes == 4
    names = {row["name"] for (table, _), row in (await server_rows(actors[0])).items()
             if table == "accounts"}  # fmt: skip
    assert names == {"Acme", "Cogs"}
    assert {c.id for c in answers[2].changes} >= {*good, *later}


async def test_a_request_with_a_mid_gap_gets_its_409_and_the_rest_go_on(
    started_db: Any,
) -> None:
    actors, devices = await _team(2)
    _new_accounts(devices[0], "Acme", "Bolt")
    gapped = devices[0].request()
    gapped["mutations"] = gapped["mutations"][1:]  # mid 2 first: mid 1 never arrived
    (account,) = _new_accounts(devices[1], "Cogs")
    answers = await _send(Batcher(STORE), [(actors[0], gapped), (actors[1], devices[1].request())])
    assert isinstance(answers[0], MidGap) and answers[0].expected == 1
    assert isinstance(answers[1], SyncResponse)
    assert [c.id for c in answers[1].changes] == [account]


@pytest.mark.parametrize("pull_limit", [1, 3, 500])
async def test_each_pull_of_a_batch_gets_its_own_page_from_one_read_of_the_log(
    started_db: Any, monkeypatch: pytest.MonkeyPatch, pull_limit: int
) -> None:
    """The pulls of a batch whose scopes are exact (reps') read the change log in one
    query (Session.plan_pulls), and each still gets exactly the page it would get alone:
    its scopes, from its own cursor, up to its own limit. A manager's scopes (a prefix)
    read alone, and so does a pull whose page may go past what the one query read."""
    _, north = await add_team(["rep", "rep", "rep", "manager"])
    _, south = await add_team(["rep", "rep"])
    actors = north + south
    devices = [Device(actor.user_id) for actor in actors]
    for round_ in range(3):  # cursors at different places, some well behind
        for k, (actor, device) in enumerate(zip(actors, devices, strict=True)):
            _new_accounts(device, f"R{round_}-{k}")
            if k % 3 != round_ % 3 or device.cursor is None:
                [answer] = await _send(Batcher(STORE), [(actor, device.request())])
                assert isinstance(answer, SyncResponse), answer
                device.receive(device.request(), wire(answer))
    for k, device in enumerate(devices):
        _new_accounts(device, f"Batch-{k}")
    sent = [d.request(pull_limit=pull_limit) for d in devices]
    own_reads = []
    read = log.read

    async def counted(*args: Any) -> Any:
        own_reads.append(args)
        return await read(*args)

    monkeypatch.setattr(log, "read", counted)
    store = Watched()
    answers = await _send(Batcher(store), list(zip(actors, sent, strict=True)))
    assert store.writes == 1
    if pull_limit == 500:  # the reps' pages all came from the one read
        assert len(own_reads) == 1 and own_reads[0][0] == north[3].scopes
    monkeypatch.setattr(log, "read", read)
    async with db.read_transaction():
        for actor, body, answer in zip(actors, sent, answers, strict=True):
            assert isinstance(answer, SyncResponse), answer
            cursor = decode_cursor(body["cursor"])
            assert cursor is not None
            alone = await log.read(actor.scopes, cursor.seq, cursor.fresh_until, pull_limit + 1)
            assert [(c.seq, c.table, c.id, c.op) for c in answer.changes] == [
                (int(r[0]), r[1], str(r[2]), r[3]) for r in alone[:pull_limit]
            ]
            assert answer.has_more == (len(alone) > pull_limit)


@pytest.mark.parametrize("limit", [1, 2])
async def test_a_batch_is_cut_at_its_limits(
    started_db: Any, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr("sync.batching.MAX_BATCH_MUTATIONS", 2 * limit)
    actors, devices = await _team(4)
    for i, device in enumerate(devices):
        _new_accounts(device, *(f"A{i}{k}" for k in range(limit)))
    store = Watched()
    answers = await _send(
        Batcher(store), [(a, d.request()) for a, d in zip(actors, devices, strict=True)]
    )
    assert all(isinstance(answer, SyncResponse) for answer in answers)
    assert store.writes == 2


async def test_when_the_batcher_is_stopped_mid_batch_its_requests_fail_and_nothing_stays(
    started_db: Any,
) -> None:
    actors, devices = await _team(2)
    _new_accounts(devices[0], "slow")
    _new_accounts(devices[1], "Waits")
    store = Watched()
    batcher = Batcher(store)
    now = int(time.time() * 1000)
    requests = [_request.decode(msgspec.json.encode(d.request())) for d in devices]
    running = asyncio.create_task(batcher.round_trip(actors[0], requests[0], now))
    await store.slowed.wait()
    queued = asyncio.create_task(batcher.round_trip(actors[1], requests[1], now))
    await asyncio.sleep(0)
    for task in list(batcher._tasks):  # as when the server stops
        task.cancel()
    answers = await asyncio.wait_for(asyncio.gather(running, queued, return_exceptions=True), 10)
    for answer in answers:
        assert isinstance(answer, RuntimeError), answer
    assert await server_rows(actors[0]) == {}
