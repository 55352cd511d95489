"""REST read speed under load: 20 clients against the real server, on SQLite and PostgreSQL.

    .venv/bin/python bench/api.py [--engines sqlite,postgres] [--accounts 10000]
                                  [--clients 20] [--seconds 10] [--profile DIR]

For each engine: a database made for the run (a temporary SQLite file; a PostgreSQL database
on 127.0.0.1:5432, user postgres or FIELDCRM_TEST_PG_*, dropped after), migrated, then
filled in bulk: accounts in 10 teams, each with 3 contacts, 3 visits, 3 notes, 2 tasks and
2 deals. Rows are written the way server/core/session.py writes them (a scope, per-field
clocks, a sync_changes row each, the seq counter moved past them), so the database is one a
server could have made. Then `fieldcrm serve` runs in a subprocess on a free port and
`--clients` clients (in this process, one keep-alive connection each, bench/support.py's
LeanClient: httpx costs as much CPU per request as the server, on the same two cores) hit it
for `--seconds` per scenario, after a one-second warm-up:

  read      GET /api/accounts/{id} (an account and its 13 children), as a rep, random ids
  list      GET /api/accounts?limit=50, as a rep (1,000 accounts in scope), random offsets
  list-all  GET /api/accounts?limit=50, as an admin (every account in scope)

Prints requests per second and p50/p99 latency as the clients saw it (the clients share the
machine's cores with the server, as they would on a 2-core box). With --profile DIR, py-spy
records the server during each scenario into DIR/<engine>-<scenario>.txt (collapsed stacks)
and prints the functions it spent most time in. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.support import LeanClient, LeanResponse, database, settle_after_bulk_load  # noqa: E402
from server import db  # noqa: E402
from server.auth.services import create_user  # noqa: E402
from server.core.actor import team_scope  # noqa: E402
from server.core.fields import SPECS  # noqa: E402
from server.core.rows import clocks_text  # noqa: E402
from sync.clock import Stamp  # noqa: E402

PASSWORD = "bench-password-1"
TEAMS = 10
CHILDREN = {"contacts": 3, "visits": 3, "notes": 3, "tasks": 2, "deals": 2}
MAX_PARAMS = 32_000  # under asyncpg's 32,767 and SQLite's 32,766 bind parameters
STATUSES = ["prospect"] * 6 + ["customer"] * 3 + ["inactive"]
CITIES = ["Lyon", "Paris", "Lille", "Nantes", "Nice", "Rennes", "Dijon", "Metz", "Brest", "Pau"]


# -- the database ------------------------------------------------------------------------


class Loader:
    """Rows as the sync store writes them: each with the next seq, a scope, a clock per
    field, and its sync_changes row."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seq = 0
        self.now = datetime.now(UTC)
        self.ms = int(self.now.timestamp() * 1000)
        self.rows: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.changes: list[tuple[int, str, str, str, str]] = []

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, table: str, scope: str, author: str, fields: dict[str, Any]) -> str:
        self.seq += 1
        record_id = self.uuid()
        values = {name: spec.default for name, spec in SPECS[table].items()} | fields
        stamp = Stamp(self.ms, 0, "server", author, self.seq)
        self.rows[table].append(
            {
                "id": record_id,
                "created_at": self.now,
                "updated_at": self.now,
                "seq": self.seq,
                "scope": scope,
                "deleted": False,
                "clocks": clocks_text(dict.fromkeys(values, stamp)),
                **values,
            }
        )
        self.changes.append((self.seq, table, record_id, scope, "put"))
        return record_id

    def account(self, team_id: str, owner_id: str, index: int) -> str:
        rng = self.rng
        account_id = self.add(
            "accounts",
            team_scope(team_id),
            owner_id,
            {
                "name": f"Prospect {index:05d}",
                "status": rng.choice(STATUSES),
                "city": rng.choice(CITIES),
                "phone": "+33 1 23 45 67 89",
                "lat": rng.uniform(43.0, 50.0),
                "lng": rng.uniform(-1.0, 7.0),
                "owner_id": owner_id,
                "team_id": team_id,
            },
        )
        scope = team_scope(team_id)
        started = self.now - timedelta(days=rng.randint(1, 300))
        for n in range(CHILDREN["contacts"]):
            self.add(
                "contacts",
                scope,
                owner_id,
                {
                    "account_id": account_id,
                    "name": f"Contact {n}",
                    "title": "Buyer",
                    "email": "buyer@example.com",
                },
            )
        for _ in range(CHILDREN["visits"]):
            self.add(
                "visits",
                scope,
                owner_id,
                {
                    "account_id": account_id,
                    "started_at": started,
                    "outcome": "met",
                    "summary": "Talked prices " * 5,
                    "user_id": owner_id,
                    "verification": "unverified",
                },
            )
        for _ in range(CHILDREN["notes"]):
            self.add(
                "notes",
                scope,
                owner_id,
                {
                    "account_id": account_id,
                    "body": "Wants a quote for the spring order. " * 4,
                    "author_id": owner_id,
                },
            )
        for n in range(CHILDREN["tasks"]):
            self.add(
                "tasks",
                scope,
                owner_id,
                {
                    "account_id": account_id,
                    "title": f"Call back {n}",
                    "due_at": started + timedelta(days=7),
                    "assignee_id": owner_id,
                    "author_id": owner_id,
                },
            )
        for n in range(CHILDREN["deals"]):
            self.add(
                "deals",
                scope,
                owner_id,
                {
                    "account_id": account_id,
                    "title": f"Order {n}",
                    "stage": "proposal",
                    "amount": float(rng.randint(100, 50_000)),
                    "currency": "EUR",
                    "owner_id": owner_id,
                },
            )
        return account_id

    async def write(self) -> None:
        for table, rows in self.rows.items():
            columns = list(rows[0])
            await insert(table, columns, [[row[c] for c in columns] for row in rows])
        await insert(
            "sync_changes",
            ["seq", "record_table", "record_id", "scope", "op"],
            [list(change) for change in self.changes],
        )
        async with db.write_transaction():
            for key, value in (("seq", self.seq), ("hlc_ms", self.ms), ("hlc_counter", 0)):
                await db.fetch("UPDATE sync_meta SET value = {} WHERE key = {}", str(value), key)
        await settle_after_bulk_load()


async def insert(table: str, columns: list[str], rows: list[list[Any]]) -> None:
    per_insert = MAX_PARAMS // len(columns)
    marks = "(" + ", ".join("{}" for _ in columns) + ")"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    async with db.write_transaction():
        for start in range(0, len(rows), per_insert):
            chunk = rows[start : start + per_insert]
            args = [value for row in chunk for value in row]
            await db.fetch(sql + ", ".join(marks for _ in chunk), *args)


async def fill(accounts: int, rng: random.Random) -> dict[str, Any]:
    """Teams, a rep in each, an admin, and the accounts; what the clients need to know."""
    reps = []
    for team in range(TEAMS):
        user_id, _ = await create_user(f"rep{team}", PASSWORD, "rep", f"team-{team:02d}")
        rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
        reps.append((f"rep{team}", user_id, str(rows[0]["team_id"])))
    await create_user("admin", PASSWORD, "admin", "hq")
    loader = Loader(rng)
    by_team: dict[str, list[str]] = collections.defaultdict(list)
    for index in range(accounts):
        username, user_id, team_id = reps[index % TEAMS]
        by_team[username].append(loader.account(team_id, user_id, index))
    await loader.write()
    return {"by_team": by_team, "rows": sum(len(r) for r in loader.rows.values())}


# -- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(url: str) -> AsyncIterator[tuple[str, int]]:
    """`fieldcrm serve` on a free port; its base URL and process id."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url}
    # The server's log goes to a file: a pipe nobody reads would stall it once full.
    log = tempfile.TemporaryFile()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as probe:
            for _ in range(300):
                if process.returncode is not None:
                    log.seek(0)
                    raise RuntimeError(f"the server stopped: {log.read().decode()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/api/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=20)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.seek(0)
        text = log.read().decode(errors="replace")
        if "ERROR" in text or "Traceback" in text:
            print(f"    the server logged errors:\n{text[-3000:]}")
        log.close()


async def token(base: str, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post(
            "/api/auth/login", json={"username": username, "password": PASSWORD}
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['token']}"}


# -- load --------------------------------------------------------------------------------

Request = Callable[[LeanClient, random.Random], Awaitable[LeanResponse]]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_scenario(
    base: str,
    server_pid: int,
    headers: dict[str, str],
    request: Request,
    clients: int,
    seconds: float,
) -> dict[str, Any]:
    """`clients` clients, each sending the next request as soon as the last one answers."""
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    measure_from, stop = started + 1.0, started + 1.0 + seconds

    async def client_loop(index: int) -> None:
        rng = random.Random(index)
        async with LeanClient(base, headers) as client:
            while (sent := time.perf_counter()) < stop:
                try:
                    response = await request(client, rng)
                    if response.status_code != 200:
                        errors[str(response.status_code)] += 1
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                if sent >= measure_from:
                    latencies.append(time.perf_counter() - sent)

    async def server_cpu_at_start() -> float:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        return cpu_seconds(server_pid)

    cpu_task = asyncio.create_task(server_cpu_at_start())
    own_cpu = time.process_time()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    server_cpu = cpu_seconds(server_pid) - await cpu_task
    own_cpu = time.process_time() - own_cpu
    elapsed = time.perf_counter() - measure_from
    latencies.sort()
    count = max(1, len(latencies))
    return {
        "server_cpu_ms": 1000 * server_cpu / count,
        "client_cpu_ms": 1000 * own_cpu / count,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "errors": dict(errors),
    }


def scenarios(by_team: dict[str, list[str]]) -> dict[str, tuple[str, Request]]:
    ids = by_team["rep0"]
    in_scope = len(ids)
    total = sum(len(v) for v in by_team.values())

    async def read(client: LeanClient, rng: random.Random) -> LeanResponse:
        return await client.get(f"/api/accounts/{rng.choice(ids)}")

    async def list_rep(client: LeanClient, rng: random.Random) -> LeanResponse:
        offset = rng.randrange(0, max(1, in_scope - 50))
        return await client.get(f"/api/accounts?limit=50&offset={offset}")

    async def list_admin(client: LeanClient, rng: random.Random) -> LeanResponse:
        offset = rng.randrange(0, max(1, total - 50))
        return await client.get(f"/api/accounts?limit=50&offset={offset}")

    return {"read": ("rep0", read), "list": ("rep0", list_rep), "list-all": ("admin", list_admin)}


@contextlib.contextmanager
def profiling(pid: int, directory: Path | None, name: str, seconds: float) -> Any:
    """py-spy on the server for the scenario, if asked for."""
    if directory is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    output = directory / f"{name}.txt"
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(output),
            "--duration",
            str(int(seconds + 1)),
            "--rate",
            "200",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.wait(timeout=60)
        print_profile(output)


def print_profile(path: Path, top: int = 12) -> None:
    """The functions with the most samples anywhere on the stack (inclusive), and on top
    (self), from py-spy's collapsed stacks."""
    if not path.exists():
        print(f"    (no profile at {path})")
        return
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    print(f"    profile {path.name}: {total} samples; inclusive / self:")
    for frame, n in inclusive.most_common(top):
        print(f"      {100 * n / total:5.1f}%  {frame}")
    for frame, n in own.most_common(top):
        print(f"      self {100 * n / total:5.1f}%  {frame}")


async def bench(engine: str, args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    results = []
    async with database(engine) as url:
        started = time.perf_counter()
        filled = await fill(args.accounts, random.Random(7))
        print(
            f"{engine}: loaded {args.accounts} accounts and {filled['rows']} rows in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        await db.stop()  # the server has the database to itself
        async with serving(url) as (base, pid):
            for name, (username, request) in scenarios(filled["by_team"]).items():
                headers = await token(base, username)
                with profiling(pid, args.profile, f"{engine}-{name}", args.seconds + 1):
                    result = await run_scenario(
                        base, pid, headers, request, args.clients, args.seconds
                    )
                results.append((engine, name, result))
                print(
                    f"{engine:8} {name:9} {result['rps']:8.0f} req/s  p50 {result['p50']:6.1f} ms"
                    f"  p99 {result['p99']:6.1f} ms  server CPU {result['server_cpu_ms']:.2f} ms"
                    f"/req, clients' {result['client_cpu_ms']:.2f} ms/req"
                    f"  ({result['requests']} requests"
                    f"{', errors ' + str(result['errors']) if result['errors'] else ''})",
                    flush=True,
                )
        await db.start()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output directory")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(
        f"{os.cpu_count()} cores; {args.clients} clients, {args.seconds:g} s per scenario",
        flush=True,
    )
    results = []
    for engine in args.engines.split(","):
        results += await bench(engine.strip(), args)
    print("\nengine   scenario     req/s   p50 ms   p99 ms   server CPU ms/req")
    for engine, name, r in results:
        print(
            f"{engine:8} {name:9} {r['rps']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f}"
            f" {r['server_cpu_ms']:10.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
