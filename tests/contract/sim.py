"""A simulated device for the sync tests, kept the way the PWA keeps its data: the
server's rows as last pulled (with their seqs), an outbox of writes with mids 1, 2, 3 ...,
a hybrid logical clock and a cursor. It talks to the engine in-process or over HTTP."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from server import db
from server.auth.services import token_digest
from server.core.actor import Actor, scope_filter
from server.core.fields import CHILD_TABLES, TABLES
from server.core.rows import record_from_row, wire_row
from server.core.store import STORE
from sync.clock import tick
from sync.engine import Exchange, round_trip, round_trips
from sync.protocol import MidGap, SyncRequest, json_encoder

REPO = Path(__file__).resolve().parents[2]
Key = tuple[str, str]  # (table, record id)
Send = Callable[[dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]

_request = msgspec.json.Decoder(SyncRequest)


def wire(value: Any) -> Any:
    """A value as it looks after a trip through JSON."""
    return msgspec.json.decode(json_encoder.encode(value))


class SyncFailure(AssertionError):
    """The server broke the protocol in a way the device can see."""


@dataclass
class Device:
    """One install: it queues writes, sends them, and stores what comes back."""

    user_id: str
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    outbox: list[dict[str, Any]] = field(default_factory=list)
    next_mid: int = 1
    hlc: tuple[int, int] = (0, 0)
    cursor: str | None = None
    rows: dict[Key, dict[str, Any]] = field(default_factory=dict)
    seqs: dict[Key, int] = field(default_factory=dict)
    reset_keys: set[Key] | None = None  # rows sent by a reset still being paged
    reset_cursor: str | None = None

    def write(
        self,
        table: str,
        record_id: str,
        op: str,
        fields: dict[str, Any] | None,
        wall_ms: int,
    ) -> dict[str, Any]:
        """Queue one local write, stamped with the next reading of this device's clock."""
        self.hlc = tick(self.hlc, wall_ms)
        mutation = {
            "mid": self.next_mid,
            "table": table,
            "id": record_id,
            "op": op,
            "fields": dict(fields or {}),
            "base_seq": self.seqs.get((table, record_id)),
            "hlc": list(self.hlc),
        }
        self.next_mid += 1
        self.outbox.append(mutation)
        return mutation

    def request(self, max_mutations: int = 1000, pull_limit: int = 500) -> dict[str, Any]:
        return {
            "protocol": 1,
            "client_id": self.client_id,
            "cursor": self.cursor,
            "pull_limit": pull_limit,
            "mutations": [dict(m) for m in self.outbox[:max_mutations]],
        }

    def receive(self, sent: dict[str, Any], data: dict[str, Any]) -> None:
        """Store one answer the way the PWA does, in one step: acknowledged writes leave
        the outbox, the page of changes and its cursor land together."""
        last_mid = data["ack"]["last_mid"]
        self.outbox = [m for m in self.outbox if m["mid"] > last_mid]
        changes = data["changes"]
        seqs = [c["seq"] for c in changes]
        if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
            raise SyncFailure(f"changes are not ordered by seq: {seqs}")
        keys = [(c["table"], c["id"]) for c in changes if c["op"] != "evict"]
        if len(set(keys)) != len(keys):
            raise SyncFailure(f"a row came twice in one page: {keys}")
        if self.reset_keys is not None and sent["cursor"] != self.reset_cursor:
            self.reset_keys = None  # the cursor moved on some other way
        if data["reset"] and self.reset_keys is None:
            self.reset_keys = set()
        for change in changes:
            key = (change["table"], change["id"])
            if change["op"] == "put":
                self.rows[key] = change["row"]
                self.seqs[key] = change["seq"]
                if self.reset_keys is not None:
                    self.reset_keys.add(key)
            elif change["op"] == "delete":
                self.drop(key)
            elif change["op"] == "evict":
                self.evict(key)
            else:
                raise SyncFailure(f"unknown change op {change['op']!r}")
        self.cursor = data["cursor"]
        if self.reset_keys is not None:
            if data["has_more"]:
                self.reset_cursor = data["cursor"]
            else:
                # Every server row the reset did not send is gone (deleted before it began,
                # or out of scope). Unacknowledged writes stay in the outbox and still show
                # in view(); keeping the stale server copy of a row they touch would bring
                # a deleted row back for good once the write is refused.
                for key in list(self.rows):
                    if key not in self.reset_keys:
                        self.drop(key)
                self.reset_keys = None
        self.hlc = max(self.hlc, (int(data["hlc_max"][0]), int(data["hlc_max"][1])))

    def drop(self, key: Key) -> None:
        self.rows.pop(key, None)
        self.seqs.pop(key, None)

    def evict(self, key: Key) -> None:
        """An evicted row leaves with what hangs off it (SPEC 4.8), as in the PWA."""
        table, record_id = key
        gone = [record_id]
        self.drop(key)
        for other, row in list(self.rows.items()):
            if table == "accounts" and row.get("account_id") == record_id:
                # Its children and its conflicts; a refused write about it (a rejection)
                # stays, in its writer's sight.
                if other[0] in CHILD_TABLES:
                    gone.append(other[1])
                if other[0] in (*CHILD_TABLES, "conflicts"):
                    self.drop(other)
        for other, row in list(self.rows.items()):
            if other[0] == "conflicts" and row.get("record_id") in gone:
                self.drop(other)

    def view(self) -> dict[Key, dict[str, Any]]:
        """What the user sees: the server's rows with the pending writes on top."""
        rows = {key: dict(row) for key, row in self.rows.items()}
        for m in self.outbox:
            key = (m["table"], m["id"])
            if m["op"] == "delete":
                rows.pop(key, None)
            else:
                rows[key] = {**rows.get(key, {"id": m["id"]}), **m["fields"]}
        return rows


def random_writes(
    device: Device, rng: random.Random, users: list[str], count: int
) -> list[dict[str, Any]]:
    """Queue `count` writes a rep might make: new accounts, contacts and tasks, field
    edits on what the device holds (some racing other devices), tasks handed to someone
    else (a scope move), and deletes of contacts and tasks."""
    now = int(time.time() * 1000)
    rows = device.view()
    accounts = sorted(k[1] for k in rows if k[0] == "accounts")
    others = sorted(k for k in rows if k[0] in ("contacts", "tasks"))
    queued = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.25 or not accounts:
            record_id = new_uuid(rng)
            m = device.write("accounts", record_id, "upsert", {"name": f"A{roll:.3f}"}, now)
            accounts.append(record_id)
        elif roll < 0.45:
            fields = {"account_id": rng.choice(accounts), "name": "Ann"}
            m = device.write("contacts", new_uuid(rng), "upsert", fields, now)
        elif roll < 0.6:
            fields = {"title": "Call", "assignee_id": rng.choice(users)}
            if rng.random() < 0.5:
                fields["account_id"] = rng.choice(accounts)
            m = device.write("tasks", new_uuid(rng), "upsert", fields, now)
        elif roll < 0.85 or not others:
            fields = {rng.choice(["city", "phone"]): rng.choice(["1", "2", "3", None])}
            m = device.write("accounts", rng.choice(accounts), "upsert", fields, now)
        elif roll < 0.95:
            table, record_id = rng.choice(others)
            fields = {"name": "Bea"} if table == "contacts" else {"done": rng.random() < 0.5}
            if table == "tasks" and rng.random() < 0.3:
                fields = {"assignee_id": rng.choice(users)}
            m = device.write(table, record_id, "upsert", fields, now)
        else:
            table, record_id = rng.choice(others)
            m = device.write(table, record_id, "delete", None, now)
        queued.append(m)
    return queued


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def engine_link(actor: Actor, now_ms: Callable[[], int]) -> Send:
    """Send requests straight to the engine, at the server time `now_ms()` gives, through
    JSON both ways as over the wire."""

    async def send(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = _request.decode(msgspec.json.encode(body))
        try:
            response = await round_trip(STORE, actor, request, now_ms())
        except MidGap as gap:
            return 409, {"error": "mid_gap", "expected": gap.expected}
        return 200, wire(response)

    return send


async def engine_batch(
    requests: list[tuple[Actor, dict[str, Any]]], now_ms: int
) -> list[tuple[int, dict[str, Any]]]:
    """Several requests straight to the engine in one batch (as the server's Batcher gives
    them when they come in together), each answered as engine_link answers it. When the
    first has mutations it begins the batch, and the others join it once its mutations
    are applied, one at a time, as requests that come in a moment later do."""
    exchanges = [
        Exchange(actor, _request.decode(msgspec.json.encode(body)), now_ms)
        for actor, body in requests
    ]
    first = 1 if exchanges[0].request.mutations else len(exchanges)
    later = exchanges[first:]
    answers = []

    def join() -> list[Exchange]:
        return [later.pop(0)] if later else []

    for answer in await round_trips(STORE, exchanges[:first], join):
        if isinstance(answer, MidGap):
            answers.append((409, {"error": "mid_gap", "expected": answer.expected}))
        else:
            answers.append((200, wire(answer)))
    return answers


def http_link(client: Any, headers: dict[str, str]) -> Send:
    """Send requests over HTTP with an httpx.AsyncClient."""

    async def send(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await client.post("/api/sync/v1", json=body, headers=headers)
        return response.status_code, response.json()

    return send


async def sync_until_done(device: Device, send: Send, pull_limit: int = 500) -> None:
    """Round trips until the outbox is empty and the pull has no more pages."""
    for _ in range(10_000):
        body = device.request(pull_limit=pull_limit)
        status, data = await send(body)
        if status != 200:
            raise SyncFailure(f"sync answered {status}: {data}")
        device.receive(body, data)
        if not data["has_more"] and not device.outbox:
            return
    raise SyncFailure("the pull never ended")


# -- the server's side, read straight from the database --------------------------------


async def add_team(roles: Iterable[str]) -> tuple[str, list[Actor]]:
    """A new team with one user per role, written straight to the database (no password
    hashing: these users never log in over HTTP)."""
    now = datetime.now(UTC)
    team_id = str(uuid.uuid4())
    await db.fetch(
        "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})",
        team_id,
        f"team-{team_id}",
        now,
    )
    actors = []
    for role in roles:
        user_id = str(uuid.uuid4())
        await db.fetch(
            "INSERT INTO users (id, username, password_hash, role, team_id, active, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {})",
            user_id,
            f"{role}-{user_id}",
            "-",
            role,
            team_id,
            True,
            now,
        )
        actors.append(Actor(user_id, f"{role}-{user_id}", role, team_id))
    return team_id, actors


async def server_rows(actor: Actor) -> dict[Key, dict[str, Any]]:
    """Every live row the actor sees, as the wire carries it."""
    scopes = actor.scopes
    assert scopes is not None, "admins see everything; scope the check to a team"
    where, args = scope_filter(scopes)
    rows: dict[Key, dict[str, Any]] = {}
    for table in sorted(TABLES):
        found = await db.fetch(
            f"SELECT * FROM {table} WHERE {where} AND deleted = {{}}", *args, False
        )
        for row in found:
            record = record_from_row(table, row)
            rows[(table, record.id)] = wire(wire_row(record))
    return rows


async def stored_records(table: str, ids: Iterable[str]) -> dict[str, Any]:
    """The stored records (tombstones included) with these ids."""
    ids = list(ids)
    if not ids:
        return {}
    marks = ", ".join("{}" for _ in ids)
    found = await db.fetch(f"SELECT * FROM {table} WHERE id IN ({marks})", *ids)
    return {str(row["id"]): record_from_row(table, row) for row in found}


async def conflicts_about(record_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The conflicts rows about these records, with their JSON columns decoded."""
    ids = list(record_ids)
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("{}" for _ in chunk)
        found = await db.fetch(f"SELECT * FROM conflicts WHERE record_id IN ({marks})", *chunk)
        for row in found:
            record = record_from_row("conflicts", row)
            out.append({"id": record.id, "scope": record.scope, **wire(record.values)})
    return out


async def issue_token(user_id: str) -> str:
    """A bearer token for a user, written straight to the database (no login round trip
    and no password hashing)."""
    token = uuid.uuid4().hex + uuid.uuid4().hex
    now = datetime.now(UTC)
    await db.fetch(
        "INSERT INTO auth_tokens (id, token_hash, user_id, created_at, expires_at, revoked_at)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        str(uuid.uuid4()),
        token_digest(token),
        user_id,
        now,
        now + timedelta(days=1),
        None,
    )
    return token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m server.cli serve` in a subprocess on a fixed port, which a test may kill
    (SIGKILL: no shutdown, no cleanup) and start again."""

    def __init__(self, database_url: str, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "FIELDCRM_DATA_DIR": str(workdir),
            "FIELDCRM_DISPATCH_INTERVAL_S": "3600",
            # The geocoder writes too; tests that compare rows after a burst stop at a
            # moment of their choosing, so it stays off here (tests/integration covers it).
            "FIELDCRM_GEOCODER": "off",
            # Many test servers share one PostgreSQL: a small warm pool each.
            "FIELDCRM_DB_POOL_MIN": "2",
        }
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, timeout_s: float = 60) -> None:
        import httpx

        self.starts += 1
        log = self.workdir / f"server-{self.port}-{self.starts}.log"
        with open(log, "wb") as out:  # noqa: ASYNC230 - a local file, opened once
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "serve", "--port", str(self.port),
                cwd=REPO, env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"fieldcrm serve exited: {log.read_text()}")
                try:
                    if (await http.get("/api/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if loop.time() > deadline:
                    await self.kill()
                    raise RuntimeError(f"fieldcrm serve did not answer: {log.read_text()}")
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                await self.kill()
