"""The server is killed (SIGKILL: no shutdown, no cleanup) in the middle of bursts of
pushes, on a SQLite file and on PostgreSQL, and started again; devices resend what was
not acknowledged, with the same mids. Nothing acknowledged is lost, a request in flight
at the kill applied wholly or not at all, and nothing is applied twice (SPEC 4.1, 4.2)."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from server import db
from server.tables import bind_tables
from tests.conftest import Database
from tests.contract.sim import (
    Device,
    ServerProcess,
    SyncFailure,
    add_team,
    conflicts_about,
    http_link,
    issue_token,
    random_writes,
    server_rows,
    stored_records,
    sync_until_done,
)

DEVICES = 8  # two or three for each of three users
SLOW = bool(os.environ.get("FIELDCRM_SLOW"))
ALLOWED_REJECTIONS = {"deleted", "not_found"}  # others' deletes and hand-overs race ours


class Phone:
    """A device that pushes bursts until the server goes away, and remembers every
    answer it got."""

    def __init__(self, device: Device, send: Any, rng: random.Random) -> None:
        self.device, self.send, self.rng = device, send, rng
        self.sent: dict[int, dict[str, Any]] = {}
        self.results: dict[int, dict[str, Any]] = {}  # the first answer for each mid
        self.in_flight: list[int] = []  # the mids of a request the kill cut off
        self.outcomes: Counter[str] = Counter()  # what became of requests in flight

    def record(self, data: dict[str, Any]) -> None:
        for result in data["ack"]["results"]:
            first = self.results.get(result["mid"])
            if first is None:
                self.results[result["mid"]] = result
            else:  # answered before: only ever as a replay of the same result
                assert result == {**first, "replayed": True}, (first, result)

    async def burst(self, users: list[str]) -> None:
        """Queue a few writes and sync, again and again, until a request fails."""
        while True:
            for m in random_writes(self.device, self.rng, users, self.rng.randint(1, 5)):
                self.sent[m["mid"]] = m
            body = self.device.request()
            try:
                status, data = await self.send(body)
            except httpx.TransportError:
                self.in_flight = [m["mid"] for m in body["mutations"]]
                return
            if status != 200:
                raise SyncFailure(f"sync answered {status}: {data}")
            self.record(data)
            self.device.receive(body, data)

    async def resend(self) -> None:
        """The first request after the restart: what was in flight applied wholly (every
        mid replayed) or not at all (every mid fresh)."""
        body = self.device.request()
        status, data = await self.send(body)
        assert status == 200, data
        replayed = {
            r["mid"]: r["replayed"] for r in data["ack"]["results"] if r["mid"] in self.in_flight
        }
        assert set(replayed) == set(self.in_flight)
        assert len(set(replayed.values())) <= 1, f"a request applied in part: {replayed}"
        if replayed:
            self.outcomes["committed before the kill" if any(replayed.values()) else "lost"] += 1
        self.record(data)
        self.device.receive(body, data)
        self.in_flight = []


async def test_a_killed_server_loses_nothing_and_doubles_nothing(
    database: Database, tmp_path: Path
) -> None:
    await kill_and_restart(database, tmp_path, kills=4)


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="long crash run: make test-slow")
async def test_many_kills(database: Database, tmp_path: Path) -> None:
    await kill_and_restart(database, tmp_path, kills=30)


async def kill_and_restart(database: Database, tmp_path: Path, kills: int) -> None:
    rng = random.Random()
    bind_tables(db.configure(database.config))
    await db.start()
    server = ServerProcess(database.url, tmp_path)
    try:
        _, actors = await add_team(["rep", "rep", "manager"])
        users = [a.user_id for a in actors]
        headers = {a.user_id: {"Authorization": f"Bearer {await issue_token(a.user_id)}"}
                   for a in actors}  # fmt: skip
        await server.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            owners = [actors[k % len(actors)] for k in range(DEVICES)]
            phones = [
                Phone(Device(actor.user_id), http_link(http, headers[actor.user_id]), rng)
                for actor in owners
            ]
            for _ in range(kills):
                bursts = [asyncio.create_task(p.burst(users)) for p in phones]
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                await server.kill()
                await asyncio.gather(*bursts)
                acknowledged = {p.device.client_id: dict(p.results) for p in phones}
                await server.start()
                await check_durable(acknowledged, owners, phones)
                for phone in phones:
                    await phone.resend()
            for phone in phones:
                await sync_until_done(phone.device, phone.send)
            for phone in phones:  # the last pushes reach everyone
                await sync_until_done(phone.device, phone.send)
        await server.stop()

        for phone, actor in zip(phones, owners, strict=True):
            assert sorted(phone.results) == sorted(phone.sent), "a write was never answered"
            for result in phone.results.values():
                if result["status"] == "rejected":
                    assert result["error"]["error"] in ALLOWED_REJECTIONS, result
            assert phone.device.rows == await server_rows(actor)
        await check_nothing_doubled()
        await check_nothing_lost(phones)
        writes = sum(len(p.sent) for p in phones)
        outcomes = sum((p.outcomes for p in phones), Counter())
        print(f"\n{database.engine}: {writes} writes through {kills} kills; in flight: {outcomes}")
    finally:
        await server.kill()
        await db.stop()


async def check_durable(
    acknowledged: dict[str, dict[int, dict[str, Any]]], owners: list[Any], phones: list[Phone]
) -> None:
    """Every answer a device got before the kill is still on record after it."""
    for phone, actor in zip(phones, owners, strict=True):
        results = acknowledged[phone.device.client_id]
        if not results:
            continue
        rows = await db.fetch(
            "SELECT last_mid FROM sync_clients WHERE user_id = {} AND client_id = {}",
            actor.user_id,
            phone.device.client_id,
        )
        assert rows and int(rows[0]["last_mid"]) >= max(results)
        stored = await db.fetch(
            "SELECT mid, result FROM sync_results WHERE user_id = {} AND client_id = {}",
            actor.user_id,
            phone.device.client_id,
        )
        kept = {int(r["mid"]): msgspec.json.decode(r["result"]) for r in stored}
        for mid, result in results.items():
            assert kept[mid] == {**result, "replayed": False}


async def check_nothing_doubled() -> None:
    """Each record is in the change log once, and no losing value was kept twice."""
    dupes = await db.fetch(
        "SELECT record_table, record_id, COUNT(*) AS n FROM sync_changes WHERE op <> 'evict'"
        " GROUP BY record_table, record_id HAVING COUNT(*) > 1"
    )
    assert not dupes, dupes
    rows = await db.fetch("SELECT record_id FROM conflicts")
    conflicts = await conflicts_about(str(r["record_id"]) for r in rows)
    same = Counter(
        (c["record_id"], c["field"], repr(c["lost_value"]), tuple(c["lost_hlc"]), c["lost_by"])
        for c in conflicts
    )
    assert max(same.values(), default=1) == 1, [k for k, n in same.items() if n > 1]


async def check_nothing_lost(phones: list[Phone]) -> None:
    """Every accepted value is the field's value now, or a conflicts row keeps it, or a
    write with a greater key replaced it; a value refused because its record was deleted
    is kept in a conflicts row."""
    writes = []
    for phone in phones:
        for mid, m in phone.sent.items():
            result = phone.results[mid]
            if m["op"] != "upsert":
                continue
            if result["status"] == "rejected" and result["error"]["error"] != "deleted":
                continue
            key = (*result["hlc"], phone.device.client_id)
            for name, value in m["fields"].items():
                writes.append((m["table"], m["id"], name, value, key, result))
    ids: dict[str, set[str]] = {}
    for table, record_id, *_ in writes:
        ids.setdefault(table, set()).add(record_id)
    stored = {
        (table, record_id): record
        for table, table_ids in ids.items()
        for record_id, record in (await stored_records(table, table_ids)).items()
    }
    conflicts = await conflicts_about({w[1] for w in writes})
    kept = {
        (c["record_id"], c["field"], repr(c["lost_value"]), tuple(c["lost_hlc"])) for c in conflicts
    }
    for table, record_id, name, value, key, result in writes:
        now = stored[(table, record_id)].values[name]
        recorded = (record_id, name, repr(value), tuple(result["hlc"])) in kept
        if result["status"] == "rejected":
            assert recorded or now == value, ("a refused value was not kept", record_id, name)
            continue
        beaten = any(
            w[:3] == (table, record_id, name) and w[4] > key and w[5]["status"] != "rejected"
            for w in writes
        )
        assert now == value or recorded or beaten, ("a value was lost", table, record_id, name)
