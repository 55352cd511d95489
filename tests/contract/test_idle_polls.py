"""Idle polls (SPEC section 15, docs/sync-protocol.md): a poll with nothing to push whose
cursor is past every change its user sees is answered without a transaction, with the
answer a read session gives; and never "nothing new" when a change the user sees had
committed, in this process or another, before the poll came in."""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from server import db
from server.core.changelog.newest import NEWEST
from server.core.store import STORE
from server.db.postgres import SIDE_APPLICATION_NAME
from server.tables import bind_tables
from sync.engine import Exchange, round_trips
from sync.protocol import SyncRequest
from tests.conftest import PG_HOST, PG_PORT, PG_USER, Database
from tests.contract.helpers import mutation, new_id
from tests.contract.sim import ServerProcess, add_team, engine_link, issue_token, wire

_request = msgspec.json.Decoder(SyncRequest)


class Transactions:
    """Counts the transactions the process's database opens (read and write)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        driver = db.setup.driver()
        reads, member = driver.read_transaction, driver.groups.member

        @asynccontextmanager
        async def counted_read() -> Any:
            self.count += 1
            async with reads():
                yield

        @asynccontextmanager
        async def counted_member(lane: str | None = None) -> Any:
            self.count += 1
            async with member(lane):
                yield

        monkeypatch.setattr(driver, "read_transaction", counted_read)
        monkeypatch.setattr(driver.groups, "member", counted_member)


def poll(client_id: str, cursor: str | None) -> dict[str, Any]:
    return {"protocol": 1, "client_id": client_id, "cursor": cursor, "mutations": []}


async def idle_answer(send: Any, body: dict[str, Any], spy: Transactions) -> dict[str, Any]:
    """Poll until the answer comes without a transaction (the process's knowledge of the
    newest seqs is primed on the first idle poll); fail after two seconds."""
    deadline = time.monotonic() + 2
    while True:
        before = spy.count
        status, data = await send(body)
        assert status == 200, data
        if spy.count == before:
            return data
        assert time.monotonic() < deadline, "idle polls still open transactions"
        await asyncio.sleep(0.05)


async def test_an_idle_poll_is_answered_as_a_read_session_would(
    started_db: Database, monkeypatch: pytest.MonkeyPatch
):
    _, (alice, bob) = await add_team(["rep", "manager"])
    spy = Transactions(monkeypatch)
    now = int(time.time() * 1000)
    send_alice, send_bob = engine_link(alice, lambda: now), engine_link(bob, lambda: now)
    account, device = new_id(), new_id()
    write = mutation(1, "accounts", account, {"name": "Quiet"}, hlc=(now + 60_000, 3))
    status, first = await send_alice(
        {"protocol": 1, "client_id": device, "cursor": None, "mutations": [write]}
    )
    assert status == 200
    status, pulled = await send_bob(poll("bob-phone", None))
    assert [c["id"] for c in pulled["changes"]] == [account]

    for actor, send, client_id, cursor in [
        (alice, send_alice, device, first["cursor"]),
        (bob, send_bob, "bob-phone", pulled["cursor"]),
    ]:
        body = poll(client_id, cursor)
        quiet = await idle_answer(send, body, spy)
        [read] = await round_trips(
            STORE, [Exchange(actor, _request.decode(msgspec.json.encode(body)), now)]
        )
        assert quiet == wire(read)
        assert quiet["changes"] == [] and quiet["cursor"] == cursor
    assert quiet["hlc_max"] == [now + 60_000, 3]  # the store's clock, not only the server's time
    # Alice's device keeps its last mid however it asks.
    quiet = await idle_answer(send_alice, poll(device, first["cursor"]), spy)
    assert quiet["ack"] == {"last_mid": 1, "results": []}

    # A change the poller sees: the next poll reads it, whatever process wrote it.
    other = new_id()
    status, _ = await send_alice(
        {"protocol": 1, "client_id": device, "cursor": None,
         "mutations": [mutation(2, "accounts", other, {"name": "Loud"})]}
    )  # fmt: skip
    assert status == 200
    status, data = await send_bob(poll("bob-phone", pulled["cursor"]))
    assert [c["id"] for c in data["changes"]] == [other]


async def test_a_change_out_of_sight_leaves_polls_idle(
    started_db: Database, monkeypatch: pytest.MonkeyPatch
):
    _, (north,) = await add_team(["rep"])
    _, (south,) = await add_team(["rep"])
    spy = Transactions(monkeypatch)
    now = int(time.time() * 1000)
    send_north, send_south = engine_link(north, lambda: now), engine_link(south, lambda: now)
    status, data = await send_north(poll("n", None))
    body = poll("n", data["cursor"])
    await idle_answer(send_north, body, spy)
    status, _ = await send_south(
        {"protocol": 1, "client_id": "s", "cursor": None,
         "mutations": [mutation(1, "accounts", new_id(), {"name": "South only"})]}
    )  # fmt: skip
    assert status == 200
    before = spy.count
    status, data = await send_north(body)
    assert status == 200 and data["changes"] == []
    assert spy.count == before  # the other team's write is no news to the north
    if started_db.engine == "sqlite":
        assert data["cursor"] != body["cursor"]  # but the cursor moves on past it
    else:
        # Seqs are in order within a team only: the north's cursor stays at its own.
        assert data["cursor"] == body["cursor"]


async def test_a_quiet_teams_phones_stay_idle_once_the_process_listens_again(
    started_db: Database, monkeypatch: pytest.MonkeyPatch
):
    """A process that starts listening again (a restart, a lost side connection) knows
    of each team's scopes no more than the team's counter: a phone of a team that has not
    written since, its cursor at its team's seq (PostgreSQL: below what other teams
    committed since), is still answered without a transaction, its cursor where it was."""
    _, (north,) = await add_team(["rep"])
    _, (south,) = await add_team(["rep"])
    spy = Transactions(monkeypatch)
    now = int(time.time() * 1000)
    send_north, send_south = engine_link(north, lambda: now), engine_link(south, lambda: now)
    status, _ = await send_north(
        {"protocol": 1, "client_id": "n", "cursor": None,
         "mutations": [mutation(1, "accounts", new_id(), {"name": "North"})]}
    )  # fmt: skip
    assert status == 200
    status, data = await send_north(poll("n-phone", None))
    assert status == 200
    for mid in (1, 2):  # the south writes after the north's phone pulled
        status, _ = await send_south(
            {"protocol": 1, "client_id": "s", "cursor": None,
             "mutations": [mutation(mid, "accounts", new_id(), {"name": f"South {mid}"})]}
        )  # fmt: skip
        assert status == 200
    body = poll("n-phone", data["cursor"])
    status, data = await send_north(body)
    assert status == 200 and data["changes"] == []
    NEWEST.forget()
    body = poll("n-phone", data["cursor"])
    quiet = await idle_answer(send_north, body, spy)
    assert quiet["changes"] == [] and quiet["cursor"] == body["cursor"]


async def test_polls_stay_right_while_the_listener_is_lost(
    started_db: Database, monkeypatch: pytest.MonkeyPatch
):
    if started_db.engine != "postgres":
        pytest.skip("PostgreSQL's listener")
    import asyncpg

    _, (alice, bob) = await add_team(["rep", "rep"])
    spy = Transactions(monkeypatch)
    send_alice, send_bob = engine_link(alice, now_ms), engine_link(bob, now_ms)
    status, data = await send_bob(poll("b", None))
    cursor = data["cursor"]
    await idle_answer(send_bob, poll("b", cursor), spy)
    admin = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=started_db.config.database
    )
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            SIDE_APPLICATION_NAME,
        )
        assert killed == 1
        await asyncio.sleep(0.1)
        assert not NEWEST.live
        for n in range(1, 4):
            account = new_id()
            status, _ = await send_alice(
                {"protocol": 1, "client_id": "a", "cursor": None,
                 "mutations": [mutation(n, "accounts", account, {"name": f"while lost {n}"})]}
            )  # fmt: skip
            assert status == 200
            status, data = await send_bob(poll("b", cursor))
            assert [c["id"] for c in data["changes"]] == [account]
            cursor = data["cursor"]
        # Heard again once the side connection is back (at most once a second).
        await idle_answer(send_bob, poll("b", cursor), spy)
    finally:
        await admin.close()


def now_ms() -> int:
    return int(time.time() * 1000)


WRITES = 40


async def test_no_commit_is_missed_by_polls_to_another_process(database: Database, tmp_path: Path):
    """Writes through one server process, polls through another: a poll sent after a
    write was acknowledged always brings it, while idle phones and another team's writer
    keep both processes busy."""
    bind_tables(db.configure(database.config))
    await db.start()
    servers = [ServerProcess(database.url, tmp_path) for _ in range(2)]
    try:
        _, (writer, reader, *idlers) = await add_team(["rep", "rep", "rep", "rep", "manager"])
        _, (stranger,) = await add_team(["rep"])
        tokens = {
            a.user_id: await issue_token(a.user_id) for a in (writer, reader, *idlers, stranger)
        }
        await asyncio.gather(*(server.start() for server in servers))
        a, b = (httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers)

        def headers(actor: Any) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[actor.user_id]}"}

        async def sync(http: httpx.AsyncClient, actor: Any, body: dict[str, Any]) -> Any:
            response = await http.post("/api/sync/v1", json=body, headers=headers(actor))
            assert response.status_code == 200, response.text
            return response.json()

        done = asyncio.Event()

        written: set[str] = set()

        async def idle(actor: Any, k: int) -> int:
            """A phone of the writer's team polling as fast as it can: a poll that falls
            between a commit and the moment its process hears of it must not move the
            cursor past the change (it would never come)."""
            cursor, polls, seen = None, 0, set()
            while True:
                last = done.is_set()
                data = await sync(b, actor, poll(f"idle-{k}", cursor))
                seen.update(c["id"] for c in data["changes"])
                cursor, polls = data["cursor"], polls + 1
                if last and not data["has_more"]:
                    missed = written - seen
                    assert not missed, f"{len(missed)} changes never reached an idle phone"
                    return polls

        async def noise() -> None:
            mid = 0
            while not done.is_set():
                mid += 1
                write = mutation(mid, "accounts", new_id(), {"name": "noise"})
                body = {"protocol": 1, "client_id": "noise", "cursor": None, "mutations": [write]}
                await sync(random.choice((a, b)), stranger, body)

        async def race() -> None:
            try:
                cursor = (await sync(b, reader, poll("reader", None)))["cursor"]
                for mid in range(1, WRITES + 1):
                    account = new_id()
                    write = mutation(mid, "accounts", account, {"name": f"n{mid}"})
                    body = {"protocol": 1, "client_id": "w", "cursor": None, "mutations": [write]}
                    await sync(a, writer, body)  # committed once this answers
                    written.add(account)
                    data = await sync(b, reader, poll("reader", cursor))
                    assert account in [c["id"] for c in data["changes"]], (mid, data)
                    cursor = data["cursor"]
                    await asyncio.sleep(random.random() * 0.005)
            finally:
                done.set()

        phones = [idle(idlers[k % len(idlers)], k) for k in range(6)]
        results = await asyncio.gather(race(), noise(), *phones)
        assert all(polls > 0 for polls in results[2:])
        await a.aclose()
        await b.aclose()
    finally:
        await asyncio.gather(*(server.stop() for server in servers))
        await db.stop()


async def test_a_commit_not_heard_of_yet_sends_the_poll_to_a_read_session(
    started_db: Database, monkeypatch: pytest.MonkeyPatch
):
    """A commit the database shows but the process has not heard of (its notification on
    the way; on SQLite another process's) sends the poll to a read session."""
    _, (alice,) = await add_team(["rep"])
    spy = Transactions(monkeypatch)
    send = engine_link(alice, now_ms)
    status, data = await send(poll("a", None))
    body = poll("a", data["cursor"])
    await idle_answer(send, body, spy)
    scopes = STORE.rules.scopes(alice)
    after = int(data["cursor"].split(".")[2])
    assert await NEWEST.quiet(scopes, alice.user_id, "a", after) is not None
    # Another writer's commit, without a word to this process: its seq on SQLite, its
    # commit number on PostgreSQL (where seqs are in order within a team only).
    key = "seq" if started_db.engine == "sqlite" else "commits"
    await other_connection(
        started_db,
        "UPDATE sync_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        f" WHERE key = '{key}'",
    )
    assert await NEWEST.quiet(scopes, alice.user_id, "a", after) is None


async def other_connection(database: Database, sql: str) -> None:
    if database.engine == "sqlite":
        import sqlite3

        conn = sqlite3.connect(database.config.path, isolation_level=None)
        try:
            conn.execute(sql)
        finally:
            conn.close()
        return
    import asyncpg

    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=database.config.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
