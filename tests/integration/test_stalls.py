"""One rep cannot stall everyone (issue 14), on both engines: a read whose cost is not
bounded runs off the event loop on SQLite and is stopped after a time limit on both; a
crafted search over long notes leaves cheap requests fast; the search index stays in step
with every kind of write."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import string
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from server import db
from server.core import limits
from server.core.actor import Actor
from server.core.writer import Edit, Source, writing
from server.syncing import controllers
from tests.factories import Login, login_as, make_account, make_child


async def get(client: Any, who: Login, path: str) -> Any:
    return await client.get(path, headers=who.headers)


class LoopWatch:
    """How late the event loop runs a task that wakes every 2 ms: the longest time the loop
    was held by something else in this process.

    A wake-up that comes late because the machine did not run this process (other test
    processes, a loaded CI machine) is not a held loop: each late wake-up counts for at
    most the CPU time this process used meanwhile (all its threads: work on the loop, or
    a thread holding the interpreter's lock against it)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(0.002)
            late = time.perf_counter() - start - 0.002
            self.worst = max(self.worst, min(late, time.process_time() - cpu))

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


# Scheduling on a shared machine jitters: a held loop is one held for far longer than this.
LOOP_HELD_S = 0.15
# A round trip is wall time, and on a shared machine (`make test` runs in 3 processes) any
# one of them can wait for a core: cheap requests must stay fast in one of TRIES tries. A
# request that waits behind the heavy ones waits in every try.
TRIES = 3


async def fast_in_one_of_tries(try_once: Callable[[], Awaitable[tuple[bool, Any]]]) -> None:
    """Run `try_once` (which checks what must hold in every try, and answers whether the
    cheap requests were fast, with what it saw) until they were, at most TRIES times."""
    tries = []
    for _ in range(TRIES):
        fast, seen = await try_once()
        tries.append(seen)
        if fast:
            return
    raise AssertionError(f"a cheap request waited in every try: {tries}")


def long_statement() -> str:
    if db.is_postgres():
        return "SELECT pg_sleep(5) AS slept"
    # About ten seconds of SQLite's virtual machine, reading nothing.
    return (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000000)"
        " SELECT count(*) AS c FROM n"
    )


async def test_a_slow_read_runs_off_the_loop_and_is_stopped(started_db: Any) -> None:
    async with LoopWatch() as watch:
        start = time.perf_counter()
        with pytest.raises(db.StatementTimeout):
            await db.fetch(long_statement(), slow=True)
        took = time.perf_counter() - start
    assert db.SLOW_READ_LIMIT_S <= took < db.SLOW_READ_LIMIT_S + 1.0, took
    assert watch.worst < LOOP_HELD_S, watch.worst
    # The connection it ran on is fine for the next read, in a transaction too.
    assert (await db.fetch("SELECT 1 AS ok", slow=True)) == [{"ok": 1}]
    async with db.read_transaction():
        with pytest.raises(db.StatementTimeout):
            await db.fetch(long_statement(), slow=True)
    async with db.read_transaction():
        assert (await db.fetch("SELECT 2 AS ok", slow=True)) == [{"ok": 2}]


async def test_a_cancelled_slow_read_stops_at_once(started_db: Any) -> None:
    task = asyncio.create_task(db.fetch(long_statement(), slow=True))
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - start < 0.5
    assert (await db.fetch("SELECT 1 AS ok", slow=True)) == [{"ok": 1}]


# -- a crafted search over long notes ------------------------------------------------------

VOCABULARY = ["".join(random.Random(n).choices(string.ascii_lowercase, k=7)) for n in range(3000)]


@pytest.fixture
async def long_notes(client: Any) -> AsyncIterator[tuple[Login, str]]:
    """A rep whose account holds 300 notes of 20,000 characters (6 MB of text)."""
    rep = await login_as(client)
    account = await make_account(client, rep, name="Long notes")
    actor = Actor(rep.user_id, rep.username, rep.role, rep.team_id)
    rng = random.Random(14)
    for _ in range(3):
        async with writing(Source.REST) as writer:
            for _ in range(100):
                body = " ".join(rng.choices(VOCABULARY, k=2500))[:20_000]
                fields = {"account_id": account["id"], "body": body}
                await writer.apply(actor, Edit("notes", str(uuid.uuid4()), fields))
    yield rep, account["id"]


async def test_a_crafted_search_leaves_cheap_requests_fast(
    client: Any, long_notes: tuple[Login, str]
) -> None:
    rep, _ = long_notes
    crafted = "/api/notes?limit=200&q=" + "+".join("abcdefgh")

    async def timed(path: str) -> tuple[float, int]:
        # Uncompressed: gzip of a 4 MB page holds the loop for tens of ms on its own
        # (docs/performance.md), which is not what this measures.
        start = time.perf_counter()
        headers = {**rep.headers, "Accept-Encoding": "identity"}
        response = await client.get(path, headers=headers)
        return time.perf_counter() - start, response.status_code

    async def cheap_ones() -> list[float]:
        took = []
        for _ in range(10):
            seconds, status = await timed("/api/health")
            assert status == 200
            took.append(seconds)
        return took

    async def try_once() -> tuple[bool, Any]:
        async with LoopWatch() as watch:
            searches = [asyncio.create_task(timed(crafted)) for _ in range(4)]
            health = await cheap_ones()
            results = await asyncio.gather(*searches)
        assert all(status == 200 for _, status in results), results
        assert watch.worst < LOOP_HELD_S, watch.worst
        search_s = max(seconds for seconds, _ in results)
        return max(health) < max(LOOP_HELD_S, search_s / 2), (health, search_s)

    await fast_in_one_of_tries(try_once)
    found = (await get(client, rep, f"/api/notes?q={VOCABULARY[7]}")).json()["items"]
    assert found and all(VOCABULARY[7] in note["body"] for note in found)


async def test_a_search_past_the_time_limit_answers_503(
    client: Any, long_notes: tuple[Login, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rep, _ = long_notes
    for module in ("server.db.sqlite", "server.db.postgres"):
        monkeypatch.setattr(f"{module}.SLOW_READ_LIMIT_S", 0.000_001)
    monkeypatch.setattr("server.db.sqlite.PROGRESS_STEPS", 100)
    response = await get(client, rep, "/api/notes?q=" + "+".join("abcdefgh"))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "too_slow"
    assert response.headers["retry-after"] == "5"
    assert (await get(client, rep, "/api/health")).status_code == 200


# -- the search index stays in step with the records ---------------------------------------


async def search(client: Any, who: Login, table: str, q: str) -> list[str]:
    response = await get(client, who, f"/api/{table}?q={q}")
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def check_index() -> None:
    """On SQLite, FTS5's own check that each search table matches its records."""
    if db.is_postgres():
        return
    for table in ("accounts", "contacts", "visits", "notes", "tasks", "deals"):
        await db.fetch(
            f"INSERT INTO {table}_search({table}_search, rank) VALUES ('integrity-check', 1)"
        )


async def test_the_index_follows_writes_deletes_and_moves(client: Any, database: Any) -> None:
    north = await login_as(client, "rep", "north")
    south = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    account = await make_account(client, north, name="Quincaillerie Dupont", city="Rennes")
    note = await make_child(client, north, "notes", account["id"], body="Veut un devis")
    assert await search(client, north, "accounts", "quinca") == [account["id"]]
    assert await search(client, north, "notes", "devis") == [note["id"]]

    # A change of a searched field: the old words go, the new ones come.
    response = await client.patch(
        f"/api/notes/{note['id']}", json={"body": "Commande signée"}, headers=north.headers
    )
    assert response.status_code == 200, response.text
    assert await search(client, north, "notes", "devis") == []
    assert await search(client, north, "notes", "signee") == [note["id"]]
    # A change of another field leaves the search as it was.
    response = await client.patch(
        f"/api/accounts/{account['id']}", json={"phone": "0102030405"}, headers=north.headers
    )
    assert await search(client, north, "accounts", "rennes") == [account["id"]]

    # A move to another team: the search follows the scope.
    response = await client.post(
        f"/api/accounts/{account['id']}/reassign",
        json={"team_id": south.team_id},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert await search(client, north, "accounts", "quinca") == []
    assert await search(client, north, "notes", "signee") == []
    assert await search(client, south, "accounts", "quinca") == [account["id"]]
    assert await search(client, south, "notes", "signee") == [note["id"]]

    # A delete (a tombstone) leaves the search; a row removed for good leaves the index.
    response = await client.delete(f"/api/notes/{note['id']}", headers=admin.headers)
    assert response.status_code == 204, response.text
    assert await search(client, south, "notes", "signee") == []
    await check_index()
    async with db.write_transaction():
        await db.fetch("DELETE FROM notes WHERE id = {}", note["id"])
    await check_index()
    if not db.is_postgres():
        # VACUUM keeps the rowids the FTS5 tables point at.
        with contextlib.closing(sqlite3.connect(database.config.path)) as conn:
            conn.execute("VACUUM")
        await check_index()
    assert await search(client, south, "accounts", "quinca dupont rennes") == [account["id"]]


async def test_search_reads_through_the_index(started_db: Any) -> None:
    """The statement the list runs uses the index on each engine (were the indexed and the
    searched expressions to differ, PostgreSQL would read every row)."""
    from server.records.search import SEARCHED, search_clause

    for table in SEARCHED:
        before, before_args, clause, args = search_clause(table, ["lyon", "eaux"])
        sql = f"{before}SELECT id, seq FROM {table} WHERE deleted = {{}}{clause}"
        if db.is_postgres():
            plan = await db.fetch(f"EXPLAIN {sql}", *before_args, False, *args)
            text = " ".join(row["QUERY PLAN"] for row in plan)
            assert f"Bitmap Index Scan on {table}_search" in text, text
        else:
            plan = await db.fetch(f"EXPLAIN QUERY PLAN {sql}", False, *args)
            text = " ".join(row["detail"] for row in plan)
            assert f"SCAN {table}_search VIRTUAL TABLE INDEX" in text, text


# -- nearby with 10,000 accounts at one point ----------------------------------------------


async def test_ten_thousand_accounts_at_one_point_do_not_stall_nearby(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10,000 creates by one rep in a few seconds are past the write rate by design: the
    # pile is the set-up here, not what is tested.
    monkeypatch.setattr(limits, "_current", [limits.Limits(write_rate_per_min=0)])
    rep = await login_as(client)
    actor = Actor(rep.user_id, rep.username, rep.role, rep.team_id)
    for batch in range(5):
        async with writing(Source.REST) as writer:
            fields = [
                {"name": f"Pile {batch}-{n}", "lat": 45.76, "lng": 4.84} for n in range(2_000)
            ]
            await writer.apply_all(actor, [Edit("accounts", str(uuid.uuid4()), f) for f in fields])
    headers = {**rep.headers, "Accept-Encoding": "identity"}

    async def nearby(limit: int) -> tuple[float, Any]:
        start = time.perf_counter()
        response = await client.get(
            f"/api/nearby?lat=45.76&lng=4.84&radius_m=25000&limit={limit}", headers=headers
        )
        return time.perf_counter() - start, response

    async def cheap_ones() -> list[float]:
        took = []
        for _ in range(10):
            start = time.perf_counter()
            assert (await client.get("/api/health")).status_code == 200
            took.append(time.perf_counter() - start)
        return took

    await nearby(20)

    async def try_once() -> tuple[bool, Any]:
        async with LoopWatch() as watch:
            searches = [asyncio.create_task(nearby(limit)) for limit in (20, 500, 500)]
            health = await cheap_ones()
            answers = await asyncio.gather(*searches)
        for seconds, response in answers:
            assert response.status_code == 200, response.text
            assert seconds < 2.0, seconds
        results = answers[1][1].json()["results"]
        assert len(results) == 500 and {r["distance_m"] for r in results} == {0.0}
        ids = [r["account"]["id"] for r in results]
        assert ids == sorted(ids)  # equal distances: by id
        assert watch.worst < LOOP_HELD_S, watch.worst
        return max(health) < LOOP_HELD_S * 2, health

    await fast_in_one_of_tries(try_once)


async def test_a_large_sync_page_is_compressed_off_the_event_loop(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of long notes (megabytes) is compressed in a thread, not on the loop, and
    still arrives whole in either encoding."""
    threads: list[str] = []
    real = controllers.compress

    def watched(body: bytes, encoding: str, on_loop: bool) -> bytes:
        threads.append(threading.current_thread().name)
        return real(body, encoding, on_loop)

    monkeypatch.setattr(controllers, "compress", watched)
    rep = await login_as(client)
    account = (await make_account(client, rep))["id"]
    text = "".join(random.choices(string.ascii_letters + " ", k=20_000))
    for _ in range(40):
        await make_child(client, rep, "notes", account, body=text)
    for encoding in ("gzip", "zstd"):
        body = {"protocol": 1, "client_id": str(uuid.uuid4()), "cursor": None, "mutations": []}
        response = await client.post(
            "/api/sync/v1", json=body, headers={**rep.headers, "Accept-Encoding": encoding}
        )
        assert response.status_code == 200
        assert response.headers["content-encoding"] == encoding
        notes = [c for c in response.json()["changes"] if c["table"] == "notes"]
        assert len(notes) == 40 and all(c["row"]["body"] == text for c in notes)
    assert threads and all(name.startswith("compress") for name in threads), threads
