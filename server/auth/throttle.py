"""The login throttle: a delay per (username, address) that grows with recent failures.

Never a lockout: failures from one address slow down only that address's next guesses for
that username. The user, logging in from anywhere else, is not slowed at all, and nobody
can lock a colleague out by typing their name with wrong passwords.

- Each attempt is written to `login_attempts` before its password is checked (committed on
  its own), and only then are the pair's other recent attempts counted. Guesses sent at
  once therefore see each other: the k-th to commit counts at least k-1 before it, so a
  burst of guesses is throttled like the same guesses one after another.
- An attempt with `n` other failures of the pair within the window is checked no sooner
  than `delay(n)` after the latest of them: 0 for the first `free_failures`, then
  `first_delay_s`, doubling up to `cap_s` (defaults: 5 free, then 1, 2, 4, 8, 16, 32, 60,
  60, ... s).
- A wait up to `sleep_max_s` (4 s) is slept through (asyncio.sleep: no thread is held) and
  the password is then checked; a longer one is answered at once with 429 and Retry-After,
  and the attempt is struck out (it was not a guess: no password was checked).
- An attempt's `at` is when its password is checked, so waits are measured from check to
  check. A right password forgets the pair's failures; others expire with the window
  (and are purged).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server import db
from server.settings import Settings

log = logging.getLogger("fieldcrm.auth")

USERNAME_MAX = 100  # login_attempts.username
COUNTED_MAX = 1000  # enough to reach the cap many times over


@dataclass(frozen=True)
class Throttle:
    window_s: float = 900.0
    free_failures: int = 5
    first_delay_s: float = 1.0
    cap_s: float = 60.0
    sleep_max_s: float = 4.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        return cls(
            window_s=settings.login_window_s,
            free_failures=settings.login_free_failures,
            cap_s=settings.login_delay_cap_s,
            sleep_max_s=settings.login_sleep_max_s,
        )

    def delay(self, failures: int) -> float:
        """How long after the latest of `failures` recent failures the next is checked."""
        if failures < self.free_failures:
            return 0.0
        steps = min(failures - self.free_failures, 32)  # 2**32 s is past any cap
        return min(self.first_delay_s * 2.0**steps, self.cap_s)


class Throttled(Exception):
    """The client must wait `retry_after_s` before its next attempt is checked."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    id: str
    username: str
    address: str
    failures_before: int  # the pair's failures within the window, other than this one


async def admit(throttle: Throttle, username: str, address: str) -> Attempt:
    """Count an attempt of `username` from `address` and wait until it may be checked.
    Raises Throttled when that is more than `sleep_max_s` away. The attempt stays counted
    as a failure unless `forget_failures` is called for the pair."""
    username = username[:USERNAME_MAX]
    # A cheap look first, so that a client hammering away is answered without a write.
    wait, _ = await _wait(throttle, username, address, None)
    if wait > throttle.sleep_max_s:
        raise _refused(username, address, wait)
    attempt_id = str(uuid.uuid4())
    await db.fetch(
        "INSERT INTO login_attempts (id, username, address, at) VALUES ({}, {}, {}, {})",
        attempt_id,
        username,
        address,
        _now(),
    )
    # Committed: every attempt of the pair that commits from now on counts this one.
    wait, failures = await _wait(throttle, username, address, attempt_id)
    if wait > throttle.sleep_max_s:
        await db.fetch("DELETE FROM login_attempts WHERE id = {}", attempt_id)
        raise _refused(username, address, wait)
    if wait > 0:
        await db.fetch(
            "UPDATE login_attempts SET at = {} WHERE id = {}",
            _now() + timedelta(seconds=wait),
            attempt_id,
        )
        await asyncio.sleep(wait)
    return Attempt(attempt_id, username, address, failures)


async def forget_failures(attempt: Attempt) -> None:
    """A right password: the pair's failures (this attempt among them) no longer count."""
    await db.fetch(
        "DELETE FROM login_attempts WHERE username = {} AND address = {}",
        attempt.username,
        attempt.address,
    )


async def _wait(
    throttle: Throttle, username: str, address: str, attempt_id: str | None
) -> tuple[float, int]:
    """(seconds until the pair's next attempt may be checked, the failures counted)."""
    now = _now()
    rows = await db.fetch(
        "SELECT id, at FROM login_attempts WHERE username = {} AND address = {} AND at > {}"
        " ORDER BY at DESC LIMIT {}",
        username,
        address,
        now - timedelta(seconds=throttle.window_s),
        COUNTED_MAX + 1,
    )
    others = [row for row in rows if row["id"] != attempt_id]
    if not others:
        return 0.0, 0
    latest: datetime = others[0]["at"]
    ready_at = latest + timedelta(seconds=throttle.delay(len(others)))
    return max(0.0, (ready_at - now).total_seconds()), len(others)


def _refused(username: str, address: str, wait: float) -> Throttled:
    seconds = math.ceil(wait)
    log.info("login of %r from %s refused: it may try again in %d s", username, address, seconds)
    return Throttled(seconds)


def _now() -> datetime:
    return datetime.now(UTC)
