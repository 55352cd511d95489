"""The change log's order per domain (issue 20, docs/sync-protocol.md "The cursor"): on
PostgreSQL each team is a domain, and a cursor is a seq per domain (`2.` cursors, when
some domain is behind the cursor's seq); SQLite has one domain and its cursors are `1.`
ones. An old `1.` cursor is still every domain at its seq, exactly; an admin, who sees
every team, gets each team's changes once, where each team is; and accounts moved
between teams while both teams write never make a puller skip or repeat a change."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from server import db
from server.core.actor import Actor, team_domain
from sync.cursor import Cursor, Position, decode_cursor
from tests.contract.sim import (
    Device,
    Key,
    SyncFailure,
    add_team,
    engine_batch,
    engine_link,
    new_uuid,
    server_rows,
    sync_until_done,
)


def now_ms() -> int:
    return int(time.time() * 1000)


async def new_accounts(actor: Actor, device: Device, *names: str) -> list[str]:
    ids = [new_uuid(random.Random()) for _ in names]
    for record_id, name in zip(ids, names, strict=True):
        device.write("accounts", record_id, "upsert", {"name": name}, now_ms())
    await sync_until_done(device, engine_link(actor, now_ms))
    return ids


async def log_after(actor: Actor, seq: int) -> list[tuple[int, str, str, str]]:
    """The change log's entries a pull of `actor` from `seq` must give, in order."""
    from server.core.actor import scope_filter

    scopes = actor.scopes
    assert scopes is not None
    where, args = scope_filter(scopes)
    rows = await db.fetch(
        "SELECT seq, record_table, record_id, op FROM sync_changes"
        f" WHERE {where} AND seq > {{}} ORDER BY seq",
        *args,
        seq,
    )
    return [(int(r["seq"]), r["record_table"], str(r["record_id"]), r["op"]) for r in rows]


async def test_an_old_cursor_is_every_domain_at_its_seq(started_db: Any) -> None:
    """A `1.` cursor (all any server before per-domain order handed out) at seq N pulls
    exactly the entries after N, whichever team wrote what since, with no reset."""
    _, (north,) = await add_team(["rep"])
    _, (south,) = await add_team(["rep"])
    phones = {north.user_id: Device(north.user_id), south.user_id: Device(south.user_id)}
    for k in range(3):
        await new_accounts(north, phones[north.user_id], f"N{k}")
        await new_accounts(south, phones[south.user_id], f"S{k}")
    entries = await log_after(north, 0)
    cursor = phones[north.user_id].cursor
    assert cursor is not None and cursor.startswith("1.")
    epoch = cursor.split(".")[1]
    for at in (0, entries[0][0], entries[1][0], entries[-1][0]):
        old = f"1.{epoch}.{at}.0.0"
        send = engine_link(north, now_ms)
        status, data = await send({"protocol": 1, "client_id": "old", "cursor": old})
        assert status == 200 and data["reset"] is False
        got = [(c["seq"], c["table"], c["id"], c["op"]) for c in data["changes"]]
        assert got == await log_after(north, at)
        # And its next cursor is past every one of them, and past nothing else of north's.
        again = await send({"protocol": 1, "client_id": "old", "cursor": data["cursor"]})
        assert again[1]["changes"] == []


async def entries_after(scopes: tuple[str, ...] | None, at: Position) -> list[Any]:
    """The change log's entries a pull from position `at` must give, in order: each with a
    seq above its domain's (None: every scope, evicts left out)."""
    from server.core.actor import scope_filter

    where, args = scope_filter(scopes) if scopes is not None else ("op <> 'evict'", [])
    rows = await db.fetch(
        f"SELECT seq, record_table, record_id, op, domain FROM sync_changes WHERE {where}"
        " ORDER BY seq",
        *args,
    )
    return [
        (int(r["seq"]), r["record_table"], str(r["record_id"]), r["op"])
        for r in rows
        if int(r["seq"]) > at.at(r["domain"])
    ]


async def test_a_cursor_with_a_domain_behind_is_honoured_exactly(started_db: Any) -> None:
    """A `2.` cursor gives each domain behind its seq the entries after that domain's own
    seq, and the others those after the cursor's seq: alone (a read of its own), and in a
    batch whose pulls read the log in one query (Session.plan_pulls). The cursor it moves
    to leaves no domain further back than it was."""
    north_id, (north, north_too) = await add_team(["rep", "rep"])
    _, (south, admin) = await add_team(["rep", "admin"])
    phones = {north.user_id: Device(north.user_id), south.user_id: Device(south.user_id)}
    for k in range(4):
        await new_accounts(north, phones[north.user_id], f"N{k}")
        await new_accounts(south, phones[south.user_id], f"S{k}")
    rows = await db.fetch("SELECT seq, scope, domain FROM sync_changes ORDER BY seq")
    domain = team_domain(north_id) if started_db.engine == "postgres" else ""
    mine = [int(r["seq"]) for r in rows if r["domain"] == domain]
    top = int(rows[-2]["seq"])
    at = Position(top, ((domain, mine[1]),))
    epoch = (phones[north.user_id].cursor or "").split(".")[1]
    cursor = Cursor(epoch, at.seq, 0, False, at.behind).encode()
    assert cursor.startswith("2.")
    for actor in (admin, north):
        status, data = await engine_link(actor, now_ms)(
            {"protocol": 1, "client_id": "crafted", "cursor": cursor}
        )
        assert status == 200 and data["reset"] is False
        got = [(c["seq"], c["table"], c["id"], c["op"]) for c in data["changes"]]
        expected = await entries_after(actor.scopes, at)
        assert got == expected and len(expected) > 1
        moved = decode_cursor(data["cursor"])
        assert moved is not None and moved.position.at(domain) >= at.at(domain)
        assert moved.seq >= at.seq
    body = {"protocol": 1, "client_id": "crafted", "cursor": cursor, "pull_limit": 2}
    answers = await engine_batch([(north, body), (north_too, body)], now_ms())
    expected = (await entries_after(north.scopes, at))[:2]
    for status, data in answers:
        assert status == 200
        assert [(c["seq"], c["table"], c["id"], c["op"]) for c in data["changes"]] == expected


async def test_an_admin_gets_each_teams_changes_once_where_each_team_is(started_db: Any) -> None:
    """An admin pulls page by page while two teams write in turn: every change once, none
    missed. With per-domain cursors on PostgreSQL the quieter team's seq is kept behind the
    cursor's (a `2.` cursor); SQLite has one domain."""
    _, (north,) = await add_team(["rep"])
    _, (south, admin) = await add_team(["rep", "admin"])
    teams = {north.user_id: Device(north.user_id), south.user_id: Device(south.user_id)}
    watcher = Device(admin.user_id)
    send = engine_link(admin, now_ms)
    seen: set[int] = set()
    behind = False
    for k in range(6):
        writer = north if k % 3 else south
        await new_accounts(writer, teams[writer.user_id], f"{k}a", f"{k}b")
        while True:
            body = watcher.request(pull_limit=3)
            status, data = await send(body)
            assert status == 200
            seqs = {c["seq"] for c in data["changes"]}
            assert not seqs & seen, "a change came twice"
            seen |= seqs
            watcher.receive(body, data)
            decoded = decode_cursor(data["cursor"])
            assert decoded is not None
            behind = behind or bool(decoded.behind)
            if not data["has_more"]:
                break
    assert behind == (started_db.engine == "postgres")
    everything = {**await server_rows(north), **await server_rows(south)}
    mine = {key: row for key, row in watcher.rows.items() if key[0] == "accounts"}
    assert mine == {key: row for key, row in everything.items() if key[0] == "accounts"}


class Puller:
    """A device that only pulls, small pages, and never takes a seq twice."""

    def __init__(self, actor: Actor) -> None:
        self.actor, self.device = actor, Device(actor.user_id)
        self.send = engine_link(actor, now_ms)
        self.seqs: set[int] = set()

    async def pull(self, limit: int) -> bool:
        body = self.device.request(pull_limit=limit)
        status, data = await self.send(body)
        if status != 200:
            raise SyncFailure(f"pull answered {status}: {data}")
        for change in data["changes"]:
            if change["seq"] in self.seqs:
                raise SyncFailure(f"seq {change['seq']} came twice")
            self.seqs.add(change["seq"])
        self.device.receive(body, data)
        return bool(data["has_more"])


async def test_moves_between_teams_while_both_write_skip_and_repeat_nothing(
    started_db: Any,
) -> None:
    """Reps of two teams write, an admin moves accounts from one team to the other and
    back, and a rep of each team and the admin pull all the while: each ends with exactly
    the server's rows, and no seq ever came twice."""
    rng = random.Random()
    north_id, (north_rep, north_puller) = await add_team(["rep", "rep"])
    south_id, (south_rep, south_puller, admin) = await add_team(["rep", "rep", "admin"])
    writers = [(north_rep, Device(north_rep.user_id)), (south_rep, Device(south_rep.user_id))]
    mover = Device(admin.user_id)
    pullers = [Puller(north_puller), Puller(south_puller), Puller(admin)]
    owned: dict[str, list[str]] = {}
    for actor, device in writers:
        owned[actor.user_id] = await new_accounts(actor, device, *(f"A{k}" for k in range(4)))
    done = asyncio.Event()

    async def write(actor: Actor, device: Device) -> None:
        send = engine_link(actor, now_ms)
        for k in range(25):
            for record_id in rng.sample(owned[actor.user_id], 2):
                device.write("accounts", record_id, "upsert", {"city": f"c{k}"}, now_ms())
            if k % 5 == 0:
                device.write("accounts", new_uuid(rng), "upsert", {"name": f"new{k}"}, now_ms())
            body = device.request()
            status, data = await send(body)
            assert status == 200, data
            device.receive(body, data)
            await asyncio.sleep(rng.random() * 0.005)

    async def move() -> None:
        send = engine_link(admin, now_ms)
        every = [*owned[north_rep.user_id], *owned[south_rep.user_id]]
        for k in range(20):
            record_id = rng.choice(every)
            team = north_id if k % 2 else south_id
            mover.write("accounts", record_id, "upsert", {"team_id": team}, now_ms())
            body = mover.request(pull_limit=1)
            status, data = await send(body)
            assert status == 200, data
            mover.receive(body, data)
            await asyncio.sleep(rng.random() * 0.005)

    async def pull(puller: Puller) -> None:
        while not done.is_set():
            await puller.pull(rng.choice([1, 3, 10]))
            await asyncio.sleep(rng.random() * 0.003)

    pulling = [asyncio.create_task(pull(p)) for p in pullers]
    try:
        await asyncio.gather(*(write(a, d) for a, d in writers), move())
    finally:
        done.set()
        await asyncio.gather(*pulling)
    for puller in pullers:
        while await puller.pull(50):
            pass
    for puller in pullers[:2]:
        assert puller.device.rows == await server_rows(puller.actor)
    everything: dict[Key, dict[str, Any]] = {}
    for actor in (north_puller, south_puller):
        everything.update(await server_rows(actor))
    accounts = {key: row for key, row in pullers[2].device.rows.items() if key[0] == "accounts"}
    assert accounts == {key: row for key, row in everything.items() if key[0] == "accounts"}


async def test_seqs_written_without_the_writer_are_passed(started_db: Any) -> None:
    """A bulk load (the benches') writes rows and log entries with seqs of its own and
    sets sync_meta.seq past them: the next write's seqs are above them, on PostgreSQL
    too, where seqs come from a sequence that knew nothing of them."""
    _, (rep,) = await add_team(["rep"])
    phone = Device(rep.user_id)
    await new_accounts(rep, phone, "Before")
    rows = await db.fetch("SELECT value FROM sync_meta WHERE key = 'seq'")
    loaded = int(rows[0]["value"]) + 5_000
    async with db.transaction():
        await db.fetch(
            "INSERT INTO sync_changes (seq, record_table, record_id, scope, op)"
            " VALUES ({}, 'accounts', {}, 'team:nobody', 'put')",
            loaded,
            new_uuid(random.Random()),
        )
        await db.fetch("UPDATE sync_meta SET value = {} WHERE key = 'seq'", str(loaded))
    (after,) = await new_accounts(rep, phone, "After")
    assert phone.seqs[("accounts", after)] > loaded
