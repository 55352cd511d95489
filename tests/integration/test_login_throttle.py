"""The login throttle over HTTP on both engines: a delay per (username, address) that grows
with recent failures, counted atomically, keyed on the client's real address, and never a
lockout of the user from anywhere else (server/auth/throttle.py, docs/security.md)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server import db
from server.auth.services import create_user
from server.settings import Settings
from tests.conftest import Database
from tests.factories import PASSWORD

WRONG = "wrong-password"
ATTACKER = "203.0.113.9"
VICTIM = "198.51.100.7"


@pytest.fixture
def settings(database: Database, request: pytest.FixtureRequest) -> Settings:
    """5 free failures, then 1 s, 2 s, ...; only the 1 s wait is slept through. A test
    changes more with `with_settings(...)`."""
    throttle = {"login_window_s": 300, "login_free_failures": 5, "login_sleep_max_s": 1.0}
    return Settings(database=database.config, **{**throttle, **getattr(request, "param", {})})


def with_settings(**changes: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=[""])


# The tests' HTTP client connects from 127.0.0.1, as a reverse proxy on the same host would.
behind_proxy = with_settings(trusted_proxies=("127.0.0.1/32",))


async def login(client: Any, username: str, password: str = PASSWORD, via: str | None = None):
    headers = {"X-Forwarded-For": via} if via else {}
    return await client.post(
        "/api/auth/login", json={"username": username, "password": password}, headers=headers
    )


async def attempts() -> list[dict[str, Any]]:
    return await db.fetch("SELECT username, address, at FROM login_attempts ORDER BY at")


async def backdate(seconds: float) -> None:
    """As if the recorded attempts had been made `seconds` earlier."""
    for row in await db.fetch("SELECT id, at FROM login_attempts"):
        at = row["at"] - timedelta(seconds=seconds)
        await db.fetch("UPDATE login_attempts SET at = {} WHERE id = {}", at, row["id"])


def assert_throttled(response: Any) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "too_many_attempts"
    seconds = int(response.headers["retry-after"])
    assert seconds >= 1 and body["retry_after_s"] == seconds
    assert f"try again in {seconds} seconds" in body["detail"]
    return seconds


async def test_failures_past_the_free_ones_slow_that_address_down(client):
    await create_user("ada", PASSWORD, "rep", "north")
    for _ in range(5):
        started = time.monotonic()
        assert (await login(client, "ada", WRONG)).status_code == 401
        assert time.monotonic() - started < 1
    # The 6th waits 1 s (slept through), then is checked.
    started = time.monotonic()
    assert (await login(client, "ada", WRONG)).status_code == 401
    assert time.monotonic() - started >= 0.9
    # The 7th would wait 2 s: answered at once, with when to come back; even the right
    # password from this address must wait, and the refusal is no failure of its own.
    started = time.monotonic()
    assert assert_throttled(await login(client, "ada")) == 2
    assert time.monotonic() - started < 1
    assert len(await attempts()) == 6
    await backdate(2)
    assert (await login(client, "ada")).status_code == 200
    # A right password forgets the failures of the pair.
    assert await attempts() == []


async def test_twenty_concurrent_wrong_logins_all_count(client):
    """Guesses sent at once see each other: at most the 5 free ones and the one whose 1 s
    wait is slept through are checked (fewer when they see more of each other than came
    before them); the others are refused, never checked against a count that missed them."""
    await create_user("ada", PASSWORD, "rep", "north")
    answers = await asyncio.gather(*(login(client, "ada", WRONG) for _ in range(20)))
    statuses = sorted(answer.status_code for answer in answers)
    checked = statuses.count(401)
    assert checked + statuses.count(429) == 20, statuses
    assert checked <= 6, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert_throttled(answer)
    # Every checked guess is counted; a refused one is not (its password was not checked).
    assert len(await attempts()) == checked


@with_settings(login_free_failures=100)
async def test_twenty_concurrent_wrong_logins_leave_twenty_failures(client):
    """With room for them all, 20 guesses at once are 20 failures: none is lost."""
    await create_user("ada", PASSWORD, "rep", "north")
    answers = await asyncio.gather(*(login(client, "ada", WRONG) for _ in range(20)))
    assert [answer.status_code for answer in answers] == [401] * 20
    assert len(await attempts()) == 20


async def test_failures_older_than_the_window_no_longer_count(client, settings):
    await create_user("ada", PASSWORD, "rep", "north")
    for _ in range(6):
        await login(client, "ada", WRONG)
    assert_throttled(await login(client, "ada"))
    await backdate(settings.login_window_s + 1)
    started = time.monotonic()
    assert (await login(client, "ada")).status_code == 200
    assert time.monotonic() - started < 1


async def test_failures_for_one_username_do_not_slow_another(client):
    await create_user("ada", PASSWORD, "rep", "north")
    await create_user("bob", PASSWORD, "rep", "north")
    for _ in range(6):
        await login(client, "ada", WRONG)
    assert_throttled(await login(client, "ada"))
    started = time.monotonic()
    assert (await login(client, "bob")).status_code == 200
    assert time.monotonic() - started < 1


async def test_guessing_at_many_usernames_from_one_address_locks_no_one_out(client):
    """No hard limit per address: behind a load balancer without FIELDCRM_TRUSTED_PROXIES
    every client has the balancer's address, and one guesser must not lock them all out."""
    await create_user("ada", PASSWORD, "rep", "north")
    for attempt in range(40):
        assert (await login(client, f"guess{attempt % 8}", WRONG)).status_code == 401
    assert (await login(client, "ada")).status_code == 200


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client):
    """A guesser who writes a new X-Forwarded-For at every guess is still one address."""
    await create_user("ada", PASSWORD, "rep", "north")
    for n in range(6):
        await login(client, "ada", WRONG, via=f"192.0.2.{n}")
    assert_throttled(await login(client, "ada", via="192.0.2.99"))
    assert {row["address"] for row in await attempts()} == {"127.0.0.1"}


@behind_proxy
async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_counts(client):
    await create_user("ada", PASSWORD, "rep", "north")
    # What the client wrote itself (left) is not believed; what the proxy appended is.
    assert (await login(client, "ada", WRONG, via=f"6.6.6.6, {ATTACKER}")).status_code == 401
    assert (await login(client, "ada", WRONG, via="2001:db8:1:2::7")).status_code == 401
    assert [row["address"] for row in await attempts()] == [ATTACKER, "2001:db8:1:2::/64"]


@behind_proxy
async def test_a_guesser_cannot_slow_the_user_from_another_address(client):
    await create_user("ada", PASSWORD, "rep", "north")
    for n in range(6):
        # Rotating the address it claims to come from does not help the guesser either.
        assert (
            await login(client, "ada", WRONG, via=f"{n}.{n}.{n}.{n}, {ATTACKER}")
        ).status_code == 401
    for _ in range(3):
        assert_throttled(await login(client, "ada", WRONG, via=ATTACKER))
    # The user, from their own address, logs in at once, every time.
    for _ in range(3):
        started = time.monotonic()
        assert (await login(client, "ada", via=VICTIM)).status_code == 200
        assert time.monotonic() - started < 1
    # ... and the guesser's address is still slowed.
    assert_throttled(await login(client, "ada", WRONG, via=ATTACKER))


async def test_a_wait_is_measured_from_the_last_check(client):
    """After a wait, the next failure waits twice as long from when that one was checked."""
    await create_user("ada", PASSWORD, "rep", "north")
    for _ in range(6):
        await login(client, "ada", WRONG)
    rows = await attempts()
    # The 6th was checked a second after it came in, and is recorded at its check.
    assert rows[-1]["at"] - rows[-2]["at"] >= timedelta(seconds=0.9)
    assert rows[-1]["at"] <= datetime.now(UTC)
