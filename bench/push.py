"""Push reminders: how fast the dispatcher delivers, and how late.

    .venv/bin/python bench/push.py [--due 1000] [--engines sqlite,postgres]

For each engine: 1,000 tasks whose reminder is due, spread over 50 reps with one subscription
each at the local push service (tests/support/push_service.py, which checks VAPID and decrypts
every message like a real one); one dispatcher round sends them all, and the rate is printed.
Then the dispatcher runs as in production with FIELDCRM_DISPATCH_INTERVAL_S=1 while reminders
come due over a few seconds, and the delay from each remind_at to its arrival is printed
(p50/p95). PostgreSQL runs on a database made for the run and dropped after (127.0.0.1:5432,
user postgres, or FIELDCRM_TEST_PG_*). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import db  # noqa: E402
from server.auth.services import create_user  # noqa: E402
from server.core.actor import Actor  # noqa: E402
from server.core.writer import Edit, Source, writing  # noqa: E402
from server.migrate import migrate  # noqa: E402
from server.push import services  # noqa: E402
from server.push.dispatcher import dispatch_round, run_dispatcher  # noqa: E402
from server.settings import Settings, parse_database_url  # noqa: E402
from server.tables import bind_tables  # noqa: E402
from tests.support.push_service import PushService  # noqa: E402

PG_HOST = os.environ.get("FIELDCRM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FIELDCRM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FIELDCRM_TEST_PG_USER", "postgres")
REPS = 50


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class RemotePushService:
    """tests/support/push_service.py in a process of its own, as a real push service is on
    another machine: its decrypting and checking do not compete with the dispatcher for this
    process's interpreter. It notes when each message (by title) arrived."""

    def __init__(self) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        # The service's origin, which FIELDCRM_PUSH_ALLOWED_HOSTS must name whole.
        self.origin: str = self._conn.recv()

    def subscriptions(self, count: int) -> list[dict[str, Any]]:
        self._conn.send(("subscribe", count))
        return self._conn.recv()  # type: ignore[no-any-return]

    def arrivals(self) -> tuple[dict[str, float], list[str]]:
        """{title: when it first arrived (time.time())}, and the service's own errors."""
        self._conn.send(("collect", 0))
        return self._conn.recv()  # type: ignore[no-any-return]

    def close(self) -> None:
        self._conn.send(("stop", 0))
        self._process.join(timeout=10)


def _serve(conn: Any) -> None:
    with PushService() as service:
        conn.send(service.origin)
        subscriptions = []
        arrived: dict[str, float] = {}
        seen: dict[str, int] = {}

        def note_arrivals() -> None:
            now = time.time()
            for subscription in subscriptions:
                if subscription.deliveries == seen.get(subscription.id, 0):
                    continue
                messages = subscription.messages
                for message in messages[seen.get(subscription.id, 0) :]:
                    arrived.setdefault(str(message.payload.get("title")), now)
                seen[subscription.id] = len(messages)

        while True:
            # 10 ms: fine enough for the delays, light enough not to slow the dispatcher down.
            if conn.poll(0.01):
                command, count = conn.recv()
                if command == "subscribe":
                    new = [service.new_subscription() for _ in range(count)]
                    subscriptions += new
                    conn.send([s.info for s in new])
                elif command == "collect":
                    # What came since the last look counts too: the dispatcher's round
                    # ends as its last message is accepted.
                    note_arrivals()
                    conn.send((dict(arrived), service.errors))
                else:
                    return
            note_arrivals()


async def make_reps(service: RemotePushService) -> list[Actor]:
    reps = []
    for n, info in enumerate(service.subscriptions(REPS)):
        name = f"bench-rep-{n}-{uuid.uuid4().hex[:6]}"
        user_id, _ = await create_user(name, "bench-password-1", "rep", "bench")
        rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
        actor = Actor(user_id, name, "rep", str(rows[0]["team_id"]))
        allowed = (service.origin,)
        await services.save_subscription(actor, info["endpoint"], info["keys"], allowed)
        reps.append(actor)
    return reps


async def make_tasks(reps: list[Actor], remind_ats: list[datetime], tag: str) -> list[str]:
    """Tasks through the one writer, one transaction, the reps in turn; their titles."""
    titles = []
    async with writing(Source.REST) as writer:
        for n, remind_at in enumerate(remind_ats):
            title = f"{tag} #{n}"
            fields = {"title": title, "remind_at": remind_at.isoformat()}
            await writer.apply(reps[n % len(reps)], Edit("tasks", str(uuid.uuid4()), fields))
            titles.append(title)
    return titles


async def throughput(settings: Settings, service: RemotePushService, due: int) -> None:
    reps = await make_reps(service)
    past = datetime.now(UTC) - timedelta(seconds=1)
    titles = await make_tasks(reps, [past] * due, "throughput")
    await services.vapid_key()  # made once per database; not part of the figure
    started, cpu = time.time(), time.process_time()
    report = await dispatch_round(settings)
    elapsed, cpu = time.time() - started, time.process_time() - cpu
    arrived, errors = service.arrivals()
    received = [arrived[t] for t in titles if t in arrived]
    last = max(received, default=started) - started
    print(
        f"  throughput: {len(received)} of {due} due reminders delivered in {elapsed:.2f} s"
        f" (last one at {last:.2f} s): {len(received) / elapsed:.0f} reminders/s"
        f" ({report.failed} failed, {report.retrying} retrying, service errors: {len(errors)});"
        f" this process used {cpu * 1000 / max(1, len(received)):.2f} ms of CPU a reminder"
        f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


async def latency(
    settings: Settings, service: RemotePushService, count: int, spread_s: float
) -> None:
    settings = msgspec.structs.replace(settings, dispatch_interval_s=1.0)
    reps = await make_reps(service)
    start = datetime.now(UTC) + timedelta(seconds=1)
    remind_ats = sorted(
        start + timedelta(seconds=random.uniform(0, spread_s)) for _ in range(count)
    )
    titles = await make_tasks(reps, remind_ats, "latency")
    dispatcher = asyncio.create_task(run_dispatcher(settings))
    deadline = time.monotonic() + spread_s + 30
    try:
        while time.monotonic() < deadline:
            arrived, _ = service.arrivals()
            if all(t in arrived for t in titles):
                break
            await asyncio.sleep(0.2)
    finally:
        dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatcher
    delays = sorted(
        arrived[t] - at.timestamp()
        for t, at in zip(titles, remind_ats, strict=True)
        if t in arrived
    )
    if not delays:
        print("  latency: no reminder arrived")
        return
    p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
    print(
        f"  latency, interval 1 s, {len(delays)} of {count} reminders coming due over"
        f" {spread_s:.0f} s: remind_at to delivery p50 {statistics.median(delays) * 1000:.0f} ms,"
        f" p95 {p95 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
    )


async def run_engine(engine: str, due: int) -> None:
    name = ""
    if engine == "sqlite":
        folder = tempfile.mkdtemp(prefix="fieldcrm-bench-push-")
        url = f"sqlite:///{folder}/bench.sqlite3"
    else:
        name = f"fieldcrm_bench_{uuid.uuid4().hex[:10]}"
        await _admin(f'CREATE DATABASE "{name}"')
        url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    service = RemotePushService()
    settings = Settings(database=parse_database_url(url), push_allowed_hosts=service.origin)
    bind_tables(db.configure(settings.database))
    await db.start()
    try:
        await migrate()
        print(f"{engine}:")
        await throughput(settings, service, due)
        await latency(settings, service, count=200, spread_s=5.0)
    finally:
        service.close()
        await db.stop()
        if name:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the default VAPID subject's warning is expected
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--engines", default="sqlite,postgres")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        asyncio.run(run_engine(engine.strip(), args.due))


if __name__ == "__main__":
    main()
