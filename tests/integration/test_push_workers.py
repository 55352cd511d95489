"""Two `fieldcrm worker` processes on one PostgreSQL: every reminder goes out exactly once,
and both sign with the one VAPID key they agreed on in the database."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server import db
from server.auth.services import create_user
from server.core.actor import Actor
from server.core.writer import Edit, Source, writing
from server.push import services
from server.push.vapid import vapid_key_from_pem
from server.settings import parse_database_url
from server.tables import bind_tables
from tests.conftest import PG_HOST, PG_PORT, PG_USER, migrate_database, pg_url, require_postgres
from tests.support.push_service import PushService, Subscription

ROOT = Path(__file__).resolve().parents[2]
REPS = 10
TASKS_PER_REP = 50


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def pg_url_for_workers() -> AsyncIterator[str]:
    """A database of its own: the workers are other processes, so the shared test database
    (truncated under them by other tests) will not do."""
    require_postgres()
    name = f"fieldcrm_workers_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _due_reminders(url: str, service: PushService) -> tuple[list[str], list[Subscription]]:
    """REPS reps with one subscription each and TASKS_PER_REP due tasks each; the task ids."""
    config = parse_database_url(url)
    await migrate_database(config)
    bind_tables(db.configure(config))
    await db.start()
    try:
        actors, subscriptions = [], []
        for n in range(REPS):
            name = f"worker-rep-{n}"
            user_id, _ = await create_user(name, "worker-password-1", "rep", "north")
            rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
            actor = Actor(user_id, name, "rep", str(rows[0]["team_id"]))
            subscription = service.new_subscription()
            keys = subscription.info["keys"]
            allowed = (service.origin,)
            await services.save_subscription(actor, subscription.endpoint, keys, allowed)
            subscriptions.append(subscription)
            actors.append(actor)
        task_ids = []
        due = datetime.now(UTC) - timedelta(seconds=1)
        async with writing(Source.REST) as writer:
            for n in range(REPS * TASKS_PER_REP):
                task_id = str(uuid.uuid4())
                await writer.apply(
                    actors[n % REPS],
                    Edit(
                        "tasks", task_id, {"title": f"Reminder {n}", "remind_at": due.isoformat()}
                    ),
                )
                task_ids.append(task_id)
        return task_ids, subscriptions
    finally:
        await db.stop()


def _start_worker(url: str, service: PushService, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FIELDCRM_DISPATCH_INTERVAL_S": "0.2",
        "FIELDCRM_PUSH_ALLOWED_HOSTS": service.origin,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_two_workers_send_each_reminder_exactly_once(pg_url_for_workers, tmp_path):
    url = pg_url_for_workers
    with PushService() as service:
        task_ids, subscriptions = await _due_reminders(url, service)
        workers = [_start_worker(url, service, tmp_path / f"worker{n}.log") for n in range(2)]
        try:

            def received() -> int:
                return sum(s.deliveries for s in subscriptions)

            await service.wait_for_async(lambda: received() >= len(task_ids), timeout=60)
            # A duplicate would come in the next rounds: give both workers a few.
            await asyncio.sleep(1.0)
            for worker in workers:
                assert worker.poll() is None, (tmp_path / "worker0.log").read_text()
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=10)
        messages = [m for s in subscriptions for m in s.messages]
        assert service.rejections == [] and service.errors == []

    counts = collections.Counter(m.payload["task_id"] for m in messages)
    assert sorted(counts) == sorted(task_ids)
    assert set(counts.values()) == {1}, [t for t, n in counts.items() if n > 1][:5]

    config = parse_database_url(url)
    bind_tables(db.configure(config))
    await db.start()
    try:
        [row] = await db.fetch("SELECT private_key FROM push_keys")
        left = await db.fetch("SELECT id FROM push_deliveries")
        unreminded = await db.fetch("SELECT id FROM tasks WHERE reminded_at IS NULL")
    finally:
        await db.stop()
    key = vapid_key_from_pem(row["private_key"].encode(), where="push_keys", advice="")
    assert {m.vapid_key for m in messages} == {key.public_key_b64url}
    assert (left, unreminded) == ([], [])
