"""Writers per team (issue 20, docs/sync-protocol.md "Writers per team"): on PostgreSQL a
rep's or a manager's writes take their team's writer's lock (and the one writer's lock,
shared), so writers of different teams do not wait for each other; an admin's writes, a
write that reaches outside the writer's team (a move to another team) and a team's very
first write run holding every team's lock. SQLite has one writer: there the same writes
give the same results, one after another.

A team's writer in the middle of a long transaction is played by a connection of the
test's own holding that team's locks (server/db/postgres.py, `lane_locks`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from server import db
from server.core.actor import Actor, team_domain
from server.db.postgres import lane_locks
from tests.conftest import PG_HOST, PG_PORT, PG_USER
from tests.contract.sim import Device, add_team, engine_link, new_uuid, server_rows

# Long enough that a write not held up by a lock has answered (it takes milliseconds).
WAIT_S = 0.5


def now_ms() -> int:
    return int(time.time() * 1000)


@asynccontextmanager
async def holding(database: Any, team_id: str | None) -> AsyncIterator[None]:
    """A writer of `team_id` (None: of every team) in the middle of its transaction, on a
    connection of its own, until the block ends."""
    import asyncpg

    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=database.config.database
    )
    try:
        await conn.execute("BEGIN")
        lane = None if team_id is None else team_domain(team_id)
        await conn.execute(lane_locks(lane))
        yield
    finally:
        await conn.execute("ROLLBACK")
        await conn.close()


async def write(
    actor: Actor, device: Device, fields: dict[str, Any], record_id: str, at_ms: int = 0
) -> None:
    device.write("accounts", record_id, "upsert", fields, at_ms or now_ms())
    body = device.request()
    status, data = await engine_link(actor, now_ms)(body)
    assert status == 200, data
    device.receive(body, data)


async def pulled(actor: Actor, phone: Device | None = None) -> dict[Any, Any]:
    """What `phone` (by default a new one) of `actor` holds once it has pulled
    everything."""
    phone = phone or Device(actor.user_id)
    send = engine_link(actor, now_ms)
    while True:
        body = phone.request()
        status, data = await send(body)
        assert status == 200, data
        phone.receive(body, data)
        if not data["has_more"]:
            return phone.rows


async def waits(work: asyncio.Task[Any]) -> bool:
    """Whether `work` is still waiting after WAIT_S."""
    done, _ = await asyncio.wait([work], timeout=WAIT_S)
    return not done


async def test_writers_of_different_teams_do_not_wait_for_each_other(started_db: Any) -> None:
    if started_db.engine != "postgres":
        pytest.skip("SQLite has one writer")
    rng = random.Random()
    north_id, (north,) = await add_team(["rep"])
    south_id, (south, admin) = await add_team(["rep", "admin"])
    phones = {a.user_id: Device(a.user_id) for a in (north, south, admin)}
    ids = {a.user_id: new_uuid(rng) for a in (north, south, admin)}
    for actor in (north, south, admin):  # each team's first write counts the team
        await write(actor, phones[actor.user_id], {"name": "first"}, ids[actor.user_id])

    async with holding(started_db, north_id):
        # The south's rep writes while a writer of the north holds its team's lock.
        started = time.monotonic()
        await asyncio.wait_for(
            write(south, phones[south.user_id], {"city": "Lyon"}, ids[south.user_id]), 10
        )
        assert time.monotonic() - started < WAIT_S
        # The north's rep waits for the north's writer; an admin waits for every team's.
        north_write = asyncio.create_task(
            write(north, phones[north.user_id], {"city": "Lille"}, ids[north.user_id])
        )
        admin_write = asyncio.create_task(
            write(admin, phones[admin.user_id], {"city": "Paris"}, ids[admin.user_id])
        )
        assert await waits(north_write)
        assert await waits(admin_write)
    await asyncio.wait_for(asyncio.gather(north_write, admin_write), 10)

    assert await pulled(north) == await server_rows(north)
    assert await pulled(south) == await server_rows(south)
    cities = {row["city"] for key, row in (await pulled(admin)).items() if key[0] == "accounts"}
    assert cities == {"Lille", "Lyon", "Paris"}


async def test_a_teams_first_write_holds_every_teams_lock(started_db: Any) -> None:
    """A team no write has counted yet (no sync_counters row) gets its first seqs from a
    writer holding every team's lock: a writer of one team only could hand out seqs below
    what another team committed meanwhile, and a cursor at that team's newest seq, taken
    while its writer was in flight, would skip them."""
    rng = random.Random()
    other_id, (other,) = await add_team(["rep"])
    await write(other, Device(other.user_id), {"name": "counted"}, new_uuid(rng))
    new_id, (rep,) = await add_team(["rep"])
    phone, account = Device(rep.user_id), new_uuid(rng)
    counted = "SELECT seq FROM sync_counters WHERE domain = {}"
    if started_db.engine == "postgres":
        assert await db.fetch(counted, team_domain(new_id)) == []
        async with holding(started_db, other_id):
            first = asyncio.create_task(write(rep, phone, {"name": "first"}, account))
            assert await waits(first)  # it waits for the other team's writer
        await asyncio.wait_for(first, 10)
        assert await db.fetch(counted, team_domain(new_id)) != []
        async with holding(started_db, other_id):  # counted now: its own lock only
            await asyncio.wait_for(write(rep, phone, {"city": "Nantes"}, account), WAIT_S * 4)
    else:
        await write(rep, phone, {"name": "first"}, account)
        await write(rep, phone, {"city": "Nantes"}, account)
    assert phone.rows == await server_rows(rep) == await pulled(rep)


async def test_a_write_that_lands_in_another_team_runs_again_holding_every_lock(
    started_db: Any,
) -> None:
    """A rep's write made before an admin moved its account to another team still lands
    there (rule 11): in the other team's order, so the write begun with the rep's team's
    lock only is undone and runs again holding every team's (on PostgreSQL it waits for
    the other team's writer meanwhile). Each team's phones then hold exactly what the
    server has for them."""
    rng = random.Random()
    _, (rep,) = await add_team(["rep"])
    south_id, (south, admin) = await add_team(["rep", "admin"])
    rep_phone, south_phone = Device(rep.user_id), Device(south.user_id)
    account = new_uuid(rng)
    await write(rep, rep_phone, {"name": "Moving"}, account)
    await write(south, south_phone, {"name": "Staying"}, new_uuid(rng))
    made = now_ms() - 60_000  # offline, a minute before the move
    await write(admin, Device(admin.user_id), {"team_id": south_id}, account)
    late = write(rep, rep_phone, {"city": "Brest"}, account, at_ms=made)
    if started_db.engine == "postgres":
        async with holding(started_db, south_id):
            landing = asyncio.create_task(late)
            assert await waits(landing)
        await asyncio.wait_for(landing, 10)
    else:
        await late
    assert await db.fetch("SELECT id FROM rejections") == []
    for actor, phone in ((rep, rep_phone), (south, south_phone)):
        assert await pulled(actor, phone) == await server_rows(actor)
    assert ("accounts", account) not in rep_phone.rows
    assert south_phone.rows[("accounts", account)]["city"] == "Brest"


@pytest.mark.parametrize("who", ["admin", "rep"])
async def test_a_write_in_flight_below_another_teams_commit_is_not_skipped(
    started_db: Any, who: str
) -> None:
    """Seqs are in commit order within a team only: a north writer in flight holds seqs
    below the ones a south writer commits meanwhile. A phone of the north (its cursor one
    number, the north's) or an admin's (a seq per team) whose first sync begins then and
    pages on neither skips the north's changes when they commit, nor keeps the account
    they delete (the first sync leaves out the tombstones up to the lowest of its teams'
    counters, not up to the newest seq: `Session.settled`)."""
    if started_db.engine != "postgres":
        pytest.skip("SQLite has one writer: seqs are in commit order")
    import asyncpg

    rng = random.Random()
    _, (north, reader) = await add_team(["rep", "rep"])
    _, (south, admin) = await add_team(["rep", "admin"])
    phones = {a.user_id: Device(a.user_id) for a in (north, south)}
    kept, gone = new_uuid(rng), new_uuid(rng)
    await write(north, phones[north.user_id], {"name": "Kept"}, kept)
    await write(north, phones[north.user_id], {"name": "Gone"}, gone)
    for k in range(3):
        await write(south, phones[south.user_id], {"name": f"S{k}"}, new_uuid(rng))
    puller = Device((admin if who == "admin" else reader).user_id)
    send = engine_link(admin if who == "admin" else reader, now_ms)

    async def page() -> bool:
        body = puller.request(pull_limit=1)
        status, data = await send(body)
        assert status == 200, data
        puller.receive(body, data)
        return bool(data["has_more"])

    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=started_db.config.database
    )
    try:
        await conn.execute("BEGIN")
        await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", kept)
        # The north's writer takes its seqs, then waits for the row.
        device = phones[north.user_id]
        device.write("accounts", gone, "delete", None, now_ms())
        device.write("accounts", kept, "upsert", {"city": "Lille"}, now_ms())
        body = device.request()
        in_flight = asyncio.create_task(engine_link(north, now_ms)(body))
        assert await waits(in_flight)
        # The south commits greater seqs meanwhile; the first sync begins, and pages on.
        await write(south, phones[south.user_id], {"name": "Later"}, new_uuid(rng))
        for _ in range(4):
            await page()
    finally:
        await conn.execute("ROLLBACK")
        await conn.close()
    status, data = await asyncio.wait_for(in_flight, 10)
    assert status == 200, data
    while await page():
        pass
    await page()
    if who == "admin":
        # Every account of both teams (an admin's phone also holds what no team sees).
        expected = {**await server_rows(north), **await server_rows(south)}
        accounts = {key: row for key, row in puller.rows.items() if key[0] == "accounts"}
        assert accounts == {key: row for key, row in expected.items() if key[0] == "accounts"}
    else:
        assert puller.rows == await server_rows(reader)
    assert ("accounts", gone) not in puller.rows
    assert puller.rows[("accounts", kept)]["city"] == "Lille"
