"""Group commit (server/db/group_commit.py), on both engines: write transactions that wait for the
writer together run one after another in one database transaction and commit together.
Each must still be all-or-nothing and durable when it returns."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
import weakref
from typing import Any

import pytest

from server import db
from server.db.setup import driver
from tests.contract.sim import Device, add_team, engine_link, server_rows, sync_until_done


async def _names() -> list[str]:
    return sorted(r["name"] for r in await db.fetch("SELECT name FROM teams"))


async def _add_team(name: str, *, fail: bool = False, pause: bool = False) -> dict[Any, Any]:
    async with db.write_transaction():
        await db.fetch(
            "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})",
            str(uuid.uuid4()),
            name,
            db_now(),
        )
        if pause:
            await asyncio.sleep(0.01)  # the others arrive meanwhile
        if fail:
            raise ValueError(name)
        return db.shared()


def db_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_waiting_writers_commit_together_and_a_failing_one_alone_is_undone(
    started_db: Any,
) -> None:
    results = await asyncio.gather(
        _add_team("first", pause=True),
        _add_team("second"),
        _add_team("broken", fail=True),
        _add_team("third"),
        return_exceptions=True,
    )
    first, second, broken, third = results
    assert isinstance(broken, ValueError)
    # The three that succeeded shared one transaction (and its shared() dict).
    assert first is second is third
    assert await _names() == ["first", "second", "third"]


async def test_when_the_commit_fails_every_member_fails_and_nothing_stays(
    started_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = driver().groups
    real_end = groups.backend.end_group

    async def failing_end(conn: Any, commit: bool) -> None:
        await real_end(conn, False)  # what a failed COMMIT leaves: nothing
        if commit:
            raise OSError("the disk is full")

    monkeypatch.setattr(groups.backend, "end_group", failing_end)
    results = await asyncio.gather(
        _add_team("first", pause=True),
        _add_team("second"),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [OSError, OSError]
    monkeypatch.setattr(groups.backend, "end_group", real_end)
    assert await _names() == []
    # The writer is free again afterwards.
    await _add_team("later")
    assert await _names() == ["later"]


async def test_a_writer_cancelled_while_waiting_leaves_the_group_working(started_db: Any) -> None:
    first = asyncio.ensure_future(_add_team("first", pause=True))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(_add_team("cancelled"))
    last = asyncio.ensure_future(_add_team("last"))
    await asyncio.sleep(0.001)
    waiting.cancel()
    await asyncio.gather(first, last)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await _names() == ["first", "last"]


async def test_devices_syncing_at_once_see_each_others_rows_and_converge(started_db: Any) -> None:
    """Many round trips in one group: a later member pulls what earlier ones wrote in the
    same, not yet committed, transaction (db.shared()); one whose request is refused
    (a mid gap) is undone without the others."""
    _, reps = await add_team(["rep"] * 6)
    now = int(time.time() * 1000)
    account = str(uuid.uuid4())
    seed = Device(reps[0].user_id)
    seed.write("accounts", account, "upsert", {"name": "Acme"}, now)
    await sync_until_done(seed, engine_link(reps[0], lambda: now))
    devices = [Device(rep.user_id) for rep in reps]
    for device in devices:
        await sync_until_done(device, engine_link(reps[devices.index(device)], lambda: now))
    for n, device in enumerate(devices):
        device.write("accounts", account, "upsert", {"phone": f"+33 {n}"}, now + n)
        device.write(
            "notes", str(uuid.uuid4()), "upsert", {"account_id": account, "body": "hi"}, now
        )
    gap = devices[-1]
    gap.outbox[0]["mid"] += 5  # a request the server must refuse with a mid gap
    links = [engine_link(rep, lambda: now) for rep in reps]
    answers = await asyncio.gather(
        *(link(device.request()) for device, link in zip(devices, links, strict=True))
    )
    assert [status for status, _ in answers] == [200] * 5 + [409]
    for device, (status, data) in zip(devices, answers, strict=True):
        if status == 200:
            device.receive(device.request(), data)
    gap.outbox[0]["mid"] -= 5
    await sync_until_done(gap, links[-1])
    for device, link in zip(devices, links, strict=True):
        await sync_until_done(device, link)
    expected = await server_rows(reps[0])
    assert sum(table == "notes" for table, _ in expected) == 6
    for device in devices:
        assert device.rows == expected


class _Kept:
    """Something a transaction keeps in shared(), such as the rows it wrote."""


@pytest.mark.parametrize("begin", [db.write_transaction, db.read_transaction, db.transaction])
async def test_what_a_transaction_kept_is_freed_once_it_ends(started_db: Any, begin: Any) -> None:
    """A timer made while a transaction is the current one holds the context it was made
    in (asyncpg made one for every statement it prepared, minutes long): nothing the
    transaction kept may be held with it. The rows of a group's requests were, for five
    minutes, and full collections took up to 100 ms."""
    async with begin():
        kept = _Kept()
        db.shared()["kept"] = kept
        timer = asyncio.get_running_loop().call_later(3600, print)
        fresh = uuid.uuid4().int % 1_000_000  # a statement the connection has not prepared
        assert (await db.fetch(f"SELECT {fresh} + {{}} AS n", 1))[0]["n"] == fresh + 1
    gone = weakref.ref(kept)
    del kept
    gc.collect()
    try:
        assert gone() is None
    finally:
        timer.cancel()
