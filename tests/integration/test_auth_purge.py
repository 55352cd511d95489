"""The auth tables' purge (server/auth/purge.py) on both engines: login attempts older
than the throttle's window and dead tokens go, in bounded runs; the rest stays."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server import db
from server.auth import purge as purge_module
from server.auth.purge import purge, run_purge
from server.auth.services import actor_for_token, create_user, token_digest
from server.settings import Settings
from tests.conftest import Database
from tests.factories import PASSWORD

NOW = datetime.now(UTC)


async def add_attempt(age_s: float) -> None:
    await db.fetch(
        "INSERT INTO login_attempts (id, username, address, at) VALUES ({}, {}, {}, {})",
        str(uuid.uuid4()),
        "ada",
        "192.0.2.1",
        NOW - timedelta(seconds=age_s),
    )


async def add_token(user_id: str, expires_in_s: float, revoked_s_ago: float | None) -> str:
    token = uuid.uuid4().hex
    await db.fetch(
        "INSERT INTO auth_tokens (id, token_hash, user_id, created_at, expires_at, revoked_at)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        str(uuid.uuid4()),
        token_digest(token),
        user_id,
        NOW - timedelta(days=1),
        NOW + timedelta(seconds=expires_in_s),
        None if revoked_s_ago is None else NOW - timedelta(seconds=revoked_s_ago),
    )
    return token


async def count(table: str) -> int:
    return int((await db.fetch(f"SELECT COUNT(*) AS n FROM {table}"))[0]["n"])


async def test_purge_deletes_old_attempts_and_dead_tokens_in_bounded_runs(started_db: Database):
    settings = Settings(database=started_db.config, login_window_s=300)
    user_id, _ = await create_user("ada", PASSWORD, "rep", "north")
    for _ in range(7):
        await add_attempt(age_s=301)
    await add_attempt(age_s=10)
    live = await add_token(user_id, expires_in_s=3600, revoked_s_ago=None)
    for _ in range(3):
        await add_token(user_id, expires_in_s=-1, revoked_s_ago=None)  # expired
    for _ in range(2):
        await add_token(user_id, expires_in_s=3600, revoked_s_ago=5)  # revoked

    # At most batch x max_batches rows of each table per run.
    first = await purge(settings, now=NOW, batch=2, max_batches=2)
    assert (first.attempts, first.tokens) == (4, 4)
    second = await purge(settings, now=NOW, batch=2, max_batches=2)
    assert (second.attempts, second.tokens) == (3, 1)
    third = await purge(settings, now=NOW, batch=2, max_batches=2)
    assert (third.attempts, third.tokens) == (0, 0)

    assert await count("login_attempts") == 1  # still within the window: it still counts
    assert await count("auth_tokens") == 1
    actor = await actor_for_token(live)
    assert actor is not None and actor.user_id == user_id


async def test_the_background_job_purges_and_goes_on(started_db: Database, monkeypatch):
    settings = Settings(database=started_db.config, login_window_s=300)
    await add_attempt(age_s=301)
    calls = []

    async def failing_once(settings: Settings, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return await purge(settings, **kwargs)

    monkeypatch.setattr(purge_module, "PURGE_INTERVAL_S", 0.01)
    monkeypatch.setattr(purge_module, "purge", failing_once)
    job = asyncio.create_task(run_purge(settings))
    try:
        for _ in range(500):
            if len(calls) >= 2 and await count("login_attempts") == 0:
                break
            await asyncio.sleep(0.01)
        assert await count("login_attempts") == 0
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
