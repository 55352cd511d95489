"""Many devices at once against two server processes on one PostgreSQL database (SPEC 4.7):
pushers send bursts of writes while pullers walk the change log with their cursors. Every
committed change must reach every puller that sees it, even when a writer that took a
smaller seq commits after a reader has moved its cursor past it.

PostgreSQL only: SQLite has one writer per file by design, and the suite's SQLite half
runs the same rules in test_property.py."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import db
from server.core.actor import scope_filter
from server.tables import bind_tables
from tests.conftest import Database, pg_url, truncate_pg
from tests.contract.sim import (
    Device,
    Key,
    ServerProcess,
    SyncFailure,
    add_team,
    http_link,
    issue_token,
    random_writes,
    server_rows,
    sync_until_done,
)

PUSHERS = 8  # two devices for each of four reps
PUSHES = 30  # sync requests each pusher sends
PULLERS = 4
ALLOWED_REJECTIONS = {"deleted", "not_found"}  # others' deletes race with our writes


@pytest.fixture
def database(pg_database: str) -> Database:
    """PostgreSQL only (with CI=true an unreachable PostgreSQL fails, never skips)."""
    from server.settings import parse_database_url

    asyncio.run(truncate_pg(pg_database))
    return Database("postgres", parse_database_url(pg_url(pg_database)))


def cursor_seq(cursor: str | None) -> int:
    return int(cursor.split(".")[2]) if cursor else 0


class Pusher:
    """A device that queues a few writes, then syncs, again and again."""

    def __init__(self, device: Device, send: Any, rng: random.Random) -> None:
        self.device, self.send, self.rng = device, send, rng
        self.results: dict[int, dict[str, Any]] = {}
        self.sent: dict[int, dict[str, Any]] = {}

    def queue(self, users: list[str]) -> None:
        for m in random_writes(self.device, self.rng, users, self.rng.randint(1, 4)):
            self.sent[m["mid"]] = m

    async def round_trip(self) -> dict[str, Any]:
        body = self.device.request(pull_limit=self.rng.choice([5, 50, 500]))
        status, data = await self.send(body)
        if status != 200:
            raise SyncFailure(f"push answered {status}: {data}")
        for result in data["ack"]["results"]:
            first = self.results.setdefault(result["mid"], result)
            assert {**first, "replayed": result["replayed"]} == result
        self.device.receive(body, data)
        return data


class Puller:
    """A device that only pulls, checking every page against its cursor."""

    def __init__(self, device: Device, send: Any, rng: random.Random) -> None:
        self.device, self.send, self.rng = device, send, rng
        self.observed: set[Key] = set()
        self.seqs: set[int] = set()
        self.pulls = 0

    async def pull(self) -> dict[str, Any]:
        device = self.device
        body = device.request(pull_limit=self.rng.choice([3, 10, 50]))
        status, data = await self.send(body)
        if status != 200:
            raise SyncFailure(f"pull answered {status}: {data}")
        before, after = cursor_seq(body["cursor"]), cursor_seq(data["cursor"])
        assert after >= before, (before, after)
        for change in data["changes"]:
            assert before < change["seq"] <= after, (before, change["seq"], after)
            assert change["seq"] not in self.seqs, f"seq {change['seq']} came twice"
            self.seqs.add(change["seq"])
            self.observed.add((change["table"], change["id"]))
        device.receive(body, data)
        self.pulls += 1
        return data


async def test_concurrent_pushes_and_pulls_lose_nothing(database: Database, tmp_path: Path):
    rng = random.Random()
    bind_tables(db.configure(database.config))
    await db.start()
    servers = [ServerProcess(database.url, tmp_path) for _ in range(2)]
    try:
        _, actors = await add_team(["rep", "rep", "rep", "rep", "manager"])
        reps, manager = actors[:4], actors[4]
        users = [a.user_id for a in actors]
        tokens = {a.user_id: await issue_token(a.user_id) for a in actors}
        await asyncio.gather(*(server.start() for server in servers))
        https = [httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers]
        try:

            def link(actor: Any, k: int) -> Any:
                headers = {"Authorization": f"Bearer {tokens[actor.user_id]}"}
                return http_link(https[k % len(https)], headers)

            pushers = [
                Pusher(Device(reps[k % 4].user_id), link(reps[k % 4], k), rng)
                for k in range(PUSHERS)
            ]
            pulling = [manager, *reps[: PULLERS - 1]]
            pullers = [
                Puller(Device(actor.user_id), link(actor, k), rng)
                for k, actor in enumerate(pulling)
            ]
            for puller in pullers:  # every change from here on must reach them
                await puller.pull()
            done = asyncio.Event()

            async def push(pusher: Pusher) -> None:
                for _ in range(PUSHES):
                    pusher.queue(users)
                    await pusher.round_trip()
                    await asyncio.sleep(rng.random() * 0.01)

            async def pull(puller: Puller) -> None:
                while not done.is_set():
                    await puller.pull()
                    await asyncio.sleep(rng.random() * 0.005)

            pull_tasks = [asyncio.create_task(pull(p)) for p in pullers]
            try:
                await asyncio.gather(*(push(p) for p in pushers))
            finally:
                done.set()
                await asyncio.gather(*pull_tasks)
            for pusher in pushers:
                await sync_until_done(pusher.device, pusher.send)
            for puller in pullers:
                while (await puller.pull())["has_more"]:
                    pass
        finally:
            for http in https:
                await http.aclose()
            await asyncio.gather(*(server.stop() for server in servers))

        # Every write was answered, each mid once; rejections only where others raced.
        for pusher in pushers:
            assert sorted(pusher.results) == sorted(pusher.sent)
            for result in pusher.results.values():
                if result["status"] == "rejected":
                    assert result["error"]["error"] in ALLOWED_REJECTIONS, result
        # Every puller holds exactly the server's rows, and saw every record it sees that
        # changed after its first pull, even records deleted since.
        for puller, actor in zip(pullers, pulling, strict=True):
            expected = await server_rows(actor)
            differing = {
                key: {
                    field: (value, expected.get(key, {}).get(field))
                    for field, value in row.items()
                    if expected.get(key, {}).get(field) != value
                }
                for key, row in puller.device.rows.items()
                if expected.get(key) != row
            }
            assert not differing, f"the puller's rows differ from the server's: {differing}"
            assert puller.device.rows.keys() == expected.keys()
            scopes = actor.scopes
            assert scopes is not None
            where, args = scope_filter(scopes)
            for table in ("accounts", "contacts", "tasks", "conflicts", "rejections"):
                rows = await db.fetch(f"SELECT id FROM {table} WHERE {where}", *args)
                missed = {(table, str(r["id"])) for r in rows} - puller.observed
                assert not missed, f"a puller never saw {sorted(missed)[:5]}"
        applied = sum(r["status"] != "rejected" for p in pushers for r in p.results.values())
        print(
            f"\n{applied} writes applied by {PUSHERS} pushers;"
            f" {sum(p.pulls for p in pullers)} pulls by {PULLERS} pullers"
        )
    finally:
        await db.stop()
