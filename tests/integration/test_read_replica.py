"""Pulls from a real streaming replica (SPEC section 15, DATABASE_REPLICA_URL).

A primary and a hot standby made by pg_basebackup run for this module (tests/support/
replica.py). Who answered a pull is read from each server's own statement counts
(pg_stat_statements): the change log is read on the replica, or on the primary. A replica
made to lag (its replay paused) must never take a client's cursor back nor make it skip a
change; a replica that has caught up answers the pulls; a replica that is down, or too far
behind, leaves them to the primary.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from server.db import replica as replica_module
from server.settings import Settings, parse_database_url
from server.syncing.services import split_cursor
from sync.cursor import decode_cursor
from tests.conftest import TRUNCATED, free_port, migrate_database
from tests.factories import Login, login_as
from tests.support.replica import (
    StreamingPair,
    require_replica_binaries,
    start_streaming_pair,
    wait_for_replay,
)

DATABASE = "fieldcrm_replica"
# Statements that read the change log: every pull makes one, on the server that answers it.
PULLS = (
    "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND query LIKE '%FROM sync_changes%' AND query NOT LIKE '%pg_stat_statements%'"
)


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    require_replica_binaries()
    pair = start_streaming_pair()
    try:
        asyncio.run(_create_database(pair))
        asyncio.run(migrate_database(parse_database_url(pair.url(DATABASE))))
        yield pair
    finally:
        pair.stop()


async def _create_database(pair: StreamingPair) -> None:
    import asyncpg

    conn = await asyncpg.connect(pair.url("postgres"))
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(pair.url(DATABASE))
    try:
        await conn.execute("CREATE EXTENSION pg_stat_statements")
    finally:
        await conn.close()


@pytest.fixture
async def fresh(pair: StreamingPair) -> StreamingPair:
    """The database as a fresh migration leaves it, on both servers."""
    import asyncpg

    conn = await asyncpg.connect(pair.url(DATABASE))
    try:
        await conn.execute(f"TRUNCATE {', '.join(TRUNCATED)}")
        await conn.execute(
            "UPDATE sync_meta SET version = 0, value = CASE key WHEN 'epoch' THEN $1 ELSE '0' END",
            secrets.token_hex(8),
        )
    finally:
        await conn.close()
    await wait_for_replay(pair, DATABASE)
    return pair


@pytest.fixture
def settings(fresh: StreamingPair, tmp_path: Path) -> Settings:
    """The app of conftest's `client`, on the primary with the replica beside it."""
    return Settings(
        database=parse_database_url(fresh.url(DATABASE)),
        database_replica=parse_database_url(fresh.url(DATABASE, replica=True)),
        replica_max_lag_s=3600.0,
        blob_url=f"file://{tmp_path / 'blobs'}",
    )


@pytest.fixture
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replica_module, "RETRY_AFTER_S", 0.2)
    monkeypatch.setattr(replica_module, "LAG_CHECK_S", 0.0)


async def pull_counts(pair: StreamingPair) -> tuple[int, int]:
    """(change-log reads on the primary, on the replica) so far."""
    import asyncpg

    counts = []
    for on_replica in (False, True):
        conn = await asyncpg.connect(pair.url(DATABASE, replica=on_replica))
        try:
            counts.append(int(await conn.fetchval(PULLS)))
        finally:
            await conn.close()
    return counts[0], counts[1]


async def on_replica(pair: StreamingPair, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pair.url(DATABASE, replica=True))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def cursor_seq(cursor: str) -> int:
    decoded = decode_cursor(split_cursor(cursor)[0])
    assert decoded is not None, cursor
    return decoded.seq


@dataclass
class Phone:
    """A device: its rows, its cursor, the seqs it has pulled, and who answered it."""

    who: Login
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    cursor: str | None = None
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    mid: int = 0
    seqs: list[int] = field(default_factory=list)

    async def sync(self, client: Any, mutations: list[dict[str, Any]] | None = None) -> None:
        """One request; checks that the cursor never goes back, that no change comes
        again at or below one already pulled, and that no reset happens."""
        body = {"protocol": 1, "client_id": self.client_id, "cursor": self.cursor,
                "mutations": mutations or []}  # fmt: skip
        response = await client.post("/api/sync/v1", json=body, headers=self.who.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert not page["reset"], "a pull made the phone start again"
        newest = max(self.seqs, default=0)
        for change in page["changes"]:
            assert change["seq"] > newest, f"change {change['seq']} came again after {newest}"
            key = (change["table"], change["id"])
            if change["op"] == "put":
                self.rows[key] = change["row"]
            else:
                self.rows.pop(key, None)
        self.seqs += [change["seq"] for change in page["changes"]]
        if self.cursor is not None:
            assert cursor_seq(page["cursor"]) >= cursor_seq(self.cursor), "the cursor went back"
        self.cursor = page["cursor"]
        if page["has_more"]:
            await self.sync(client)

    async def add_account(self, client: Any, name: str) -> str:
        self.mid += 1
        account_id = str(uuid.uuid4())
        await self.sync(
            client,
            [{"mid": self.mid, "table": "accounts", "id": account_id, "op": "upsert",
              "fields": {"name": name}, "base_seq": None,
              "hlc": [1_800_000_000_000 + self.mid, 0]}],
        )  # fmt: skip
        return account_id

    def names(self) -> set[str]:
        return {row["name"] for (table, _), row in self.rows.items() if table == "accounts"}


@pytest.fixture
async def rep(client: Any) -> AsyncIterator[Login]:
    yield await login_as(client, "rep", "north")


async def test_pulls_are_answered_by_the_replica_once_it_has_caught_up(
    client: Any, rep: Login, fresh: StreamingPair
) -> None:
    writer = Phone(rep)
    for n in range(3):
        await writer.add_account(client, f"Shop {n}")
    await wait_for_replay(fresh, DATABASE)

    before = await pull_counts(fresh)
    reader = Phone(rep)
    await reader.sync(client)  # a first sync: the whole scope, from the replica
    await writer.sync(client)  # nothing new, from the replica
    after = await pull_counts(fresh)
    assert reader.names() == {"Shop 0", "Shop 1", "Shop 2"}
    assert after[1] - before[1] >= 2, "the replica answered no pull"
    assert after[0] == before[0], "a pull went to the primary though the replica had it all"

    # A write lands on the primary; once replayed, the replica serves it.
    await writer.add_account(client, "Shop 3")
    await wait_for_replay(fresh, DATABASE)
    before = await pull_counts(fresh)
    await reader.sync(client)
    after = await pull_counts(fresh)
    assert reader.names() == {"Shop 0", "Shop 1", "Shop 2", "Shop 3"}
    assert (after[0] - before[0], after[1] - before[1]) == (0, 1)


async def test_a_lagging_replica_never_takes_a_cursor_back_nor_skips_a_change(
    client: Any, rep: Login, fresh: StreamingPair
) -> None:
    writer, reader = Phone(rep), Phone(rep)
    await writer.add_account(client, "Before")
    await wait_for_replay(fresh, DATABASE)
    await reader.sync(client)
    await on_replica(fresh, "SELECT pg_wal_replay_pause()")
    try:
        for n in range(4):
            # The writer's cursor is past what the replica has: the replica answers none of
            # its pulls (the primary does, or the idle path: nothing new since its push),
            # and it sees its own writes.
            await writer.add_account(client, f"During {n}")
            before = await pull_counts(fresh)
            await writer.sync(client)
            after = await pull_counts(fresh)
            assert after[1] == before[1], "a replica behind the writer's cursor answered it"
            assert f"During {n}" in writer.names()
            # The reader's cursor is within what the replica has: the replica answers,
            # with nothing new yet, and the cursor stays where it was.
            cursor = reader.cursor
            before = await pull_counts(fresh)
            await reader.sync(client)
            after = await pull_counts(fresh)
            assert (after[0] - before[0], after[1] - before[1]) == (0, 1)
            assert reader.names() == {"Before"}
            assert reader.cursor == cursor
    finally:
        await on_replica(fresh, "SELECT pg_wal_replay_resume()")
    await wait_for_replay(fresh, DATABASE)
    await reader.sync(client)
    await writer.sync(client)
    expected = {"Before", *(f"During {n}" for n in range(4))}
    assert reader.names() == expected
    assert writer.names() == expected
    assert reader.rows == writer.rows


async def test_pulls_mid_replay_see_a_consistent_prefix(
    client: Any, rep: Login, fresh: StreamingPair
) -> None:
    """Replay paused and resumed while writes and pulls interleave: every phone ends with
    everything, no change came twice, no cursor went back."""
    writer = Phone(rep)
    readers = [Phone(rep) for _ in range(3)]
    for n in range(12):
        if n % 4 == 0:
            await on_replica(fresh, "SELECT pg_wal_replay_pause()")
        if n % 4 == 2:
            await on_replica(fresh, "SELECT pg_wal_replay_resume()")
        await writer.add_account(client, f"Shop {n}")
        await asyncio.gather(*(reader.sync(client) for reader in readers))
    await on_replica(fresh, "SELECT pg_wal_replay_resume()")
    await wait_for_replay(fresh, DATABASE)
    for reader in readers:
        await reader.sync(client)
        assert reader.names() == {f"Shop {n}" for n in range(12)}


async def test_pulls_go_to_the_primary_while_the_replica_is_down(
    client: Any, rep: Login, fresh: StreamingPair, quick_retry: None
) -> None:
    writer, reader = Phone(rep), Phone(rep)
    await writer.add_account(client, "Shop 0")
    await wait_for_replay(fresh, DATABASE)
    await reader.sync(client)
    fresh.stop_replica()
    try:
        await writer.add_account(client, "Shop 1")
        for _ in range(3):
            await reader.sync(client)
            await asyncio.sleep(0.1)
        assert reader.names() == {"Shop 0", "Shop 1"}
    finally:
        fresh.start_replica()
    await wait_for_replay(fresh, DATABASE)
    await asyncio.sleep(0.3)  # past RETRY_AFTER_S: the next pull tries the replica again
    await writer.add_account(client, "Shop 2")
    await wait_for_replay(fresh, DATABASE)
    await reader.sync(client)  # the probe
    # Something new for the reader (an up-to-date cursor is answered by the idle path,
    # without reading the change log anywhere): the replica answers it again.
    await writer.add_account(client, "Shop 3")
    await wait_for_replay(fresh, DATABASE)
    before = await pull_counts(fresh)
    await reader.sync(client)
    after = await pull_counts(fresh)
    assert (after[0] - before[0], after[1] - before[1]) == (0, 1)
    assert reader.names() == {"Shop 0", "Shop 1", "Shop 2", "Shop 3"}


async def test_a_replica_too_far_behind_answers_no_pull(
    client: Any, rep: Login, fresh: StreamingPair, quick_retry: None
) -> None:
    """A replay stuck for longer than FIELDCRM_REPLICA_MAX_LAG_S: even a phone whose cursor
    the replica could answer gets the primary's newest changes."""
    writer, reader = Phone(rep), Phone(rep)
    await writer.add_account(client, "Shop 0")
    await wait_for_replay(fresh, DATABASE)
    await reader.sync(client)
    assert replica_module._replica is not None
    replica_module._replica.max_lag_s = 0.3
    await on_replica(fresh, "SELECT pg_wal_replay_pause()")
    try:
        await writer.add_account(client, "Shop 1")
        await asyncio.sleep(0.6)
        before = await pull_counts(fresh)
        await reader.sync(client)
        after = await pull_counts(fresh)
        assert (after[0] - before[0], after[1] - before[1]) == (1, 0)
        assert reader.names() == {"Shop 0", "Shop 1"}
    finally:
        await on_replica(fresh, "SELECT pg_wal_replay_resume()")


async def test_a_first_sync_begun_on_the_primary_is_not_finished_by_a_replica_behind_it(
    client: Any, rep: Login, fresh: StreamingPair, quick_retry: None
) -> None:
    """A first sync leaves out the tombstones that existed when it began (on the primary,
    at seq P). Its later pages may not come from a replica that has not replayed up to P:
    a record deleted before P but still live in the replica's snapshot would be sent as a
    put, and its delete, at or below P, never."""
    writer = Phone(rep)
    ids = [await writer.add_account(client, f"Shop {n}") for n in range(5)]
    await wait_for_replay(fresh, DATABASE)
    await on_replica(fresh, "SELECT pg_wal_replay_pause()")
    replica = replica_module._replica
    assert replica is not None
    try:
        writer.mid += 1
        await writer.sync(
            client,
            [{"mid": writer.mid, "table": "accounts", "id": ids[-1], "op": "delete",
              "fields": {}, "base_seq": None, "hlc": [1_800_000_000_100, 0]}],
        )  # fmt: skip
        # The first page from the primary (the replica is too far behind for a moment).
        newcomer = Phone(rep)
        replica.max_lag_s = 0.0
        body = {"protocol": 1, "client_id": newcomer.client_id, "cursor": None,
                "mutations": [], "pull_limit": 2}  # fmt: skip
        response = await client.post("/api/sync/v1", json=body, headers=rep.headers)
        page = response.json()
        assert page["has_more"]
        newcomer.cursor = page["cursor"]
        for change in page["changes"]:
            newcomer.rows[(change["table"], change["id"])] = change["row"]
        newcomer.seqs += [change["seq"] for change in page["changes"]]
        # The rest while the replica is back within its lag, but still paused.
        replica.max_lag_s = 3600.0
        await newcomer.sync(client)
    finally:
        await on_replica(fresh, "SELECT pg_wal_replay_resume()")
    await wait_for_replay(fresh, DATABASE)
    await newcomer.sync(client)
    assert newcomer.names() == {f"Shop {n}" for n in range(4)}


async def test_a_server_that_is_not_a_replica_or_is_not_there_answers_no_pull(
    fresh: StreamingPair,
) -> None:
    """DATABASE_REPLICA_URL naming a primary (a promoted replica's history may have left
    the primary's), or nothing that listens: the replica is only marked down, and the
    server starts and answers on the primary."""
    from server.db.replica import Replica, ReplicaUnavailable

    for url, says in (
        (fresh.url(DATABASE), "not a replica"),
        (f"postgresql://postgres@127.0.0.1:{free_port()}/{DATABASE}", "down|did not answer"),
    ):
        replica = Replica(parse_database_url(url), 3600.0)
        await replica.start()  # never raises
        try:
            with pytest.raises(ReplicaUnavailable, match=says):
                async with replica.read_transaction():
                    pass
        finally:
            await replica.stop()


async def test_readers_racing_writers_on_a_replica_that_applies_late(
    client: Any, rep: Login, fresh: StreamingPair
) -> None:
    """The replica applies each commit 30 ms after the primary made it
    (recovery_min_apply_delay): two phones write (and pull after each write) while three
    only read, all at once; every pull is checked (no cursor back, no change twice, no
    reset) and every phone ends with every record."""
    await on_replica(fresh, "ALTER SYSTEM SET recovery_min_apply_delay = '30ms'")
    await on_replica(fresh, "SELECT pg_reload_conf()")
    writers = [Phone(rep) for _ in range(2)]
    readers = [Phone(rep) for _ in range(3)]
    names: set[str] = set()
    before = await pull_counts(fresh)
    try:

        async def write(k: int, phone: Phone) -> None:
            for n in range(10):
                name = f"Shop {k}-{n}"
                names.add(name)
                await phone.add_account(client, name)
                await phone.sync(client)  # a pull with a cursor the replica may not have

        async def read(phone: Phone) -> None:
            for _ in range(25):
                await phone.sync(client)
                await asyncio.sleep(0.01)

        await asyncio.gather(
            *(write(k, phone) for k, phone in enumerate(writers)),
            *(read(phone) for phone in readers),
        )
    finally:
        await on_replica(fresh, "ALTER SYSTEM RESET recovery_min_apply_delay")
        await on_replica(fresh, "SELECT pg_reload_conf()")
    after = await pull_counts(fresh)
    assert after[1] > before[1], "the replica answered no pull"
    await wait_for_replay(fresh, DATABASE)
    for phone in writers + readers:
        await phone.sync(client)
        assert phone.names() == names
