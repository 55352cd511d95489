"""Passwords: scrypt at OWASP's minimum cost, hashed in a thread pool of their own.

A stored hash is `scrypt$N$r$p$salt$digest` (base64), so a hash made at an older, lower
cost still verifies; `needs_rehash` tells the login to store a new one at today's cost.

One hash takes 0.33 to 0.45 s of one core and 128 MiB (N=2^17, r=8) on a loaded 2-vCPU
AMD EPYC. It runs in `HASH_THREADS` threads of its own: never on the event loop, and never queued
behind other work sent to threads (push sends, geocoding), so a slow push service cannot
hold logins up. The bound also bounds memory: at most HASH_THREADS x 128 MiB at once.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Cost:
    """scrypt's parameters: N (CPU and memory), r (block size), p (parallelism)."""

    n: int
    r: int
    p: int

    @property
    def maxmem(self) -> int:
        """The memory OpenSSL needs for it (128 r (N + p + 2) bytes), and a little more."""
        return 128 * self.r * (self.n + self.p + 2) + 1024 * 1024


# OWASP's Password Storage Cheat Sheet: scrypt with N=2^17, r=8, p=1 at least.
OWASP_MINIMUM = Cost(n=2**17, r=8, p=1)
# The cost new hashes get. Tests lower it (tests/conftest.py) so that making users is quick.
COST = OWASP_MINIMUM
# What a stored hash may ask for; anything beyond is no hash of ours (and would take
# gigabytes to check).
MAX_COST = Cost(n=2**20, r=32, p=16)
MAX_MEMORY = 512 * 1024 * 1024
HASH_THREADS = 2
DIGEST_BYTES = 32

_pool: ThreadPoolExecutor | None = None


def hash_password(password: str, cost: Cost | None = None) -> str:
    """A new salted hash of `password` at `cost` (by default COST). Slow: call it through
    `hash_in_pool` from async code."""
    cost = cost or COST
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, cost, DIGEST_BYTES)
    b64 = base64.b64encode
    return f"scrypt${cost.n}${cost.r}${cost.p}${b64(salt).decode()}${b64(digest).decode()}"


def parse_cost(stored: str) -> Cost | None:
    """The cost a stored hash was made with, or None if it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        cost = Cost(n=int(parts[1]), r=int(parts[2]), p=int(parts[3]))
    except ValueError:
        return None
    within = (
        2 <= cost.n <= MAX_COST.n
        and cost.n & (cost.n - 1) == 0
        and 1 <= cost.r <= MAX_COST.r
        and 1 <= cost.p <= MAX_COST.p
        and cost.maxmem <= MAX_MEMORY
    )
    return cost if within else None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from, at whatever cost it was made.
    Slow: call it through `verify_in_pool` from async code."""
    cost = parse_cost(stored)
    if cost is None:
        return False
    try:
        salt = base64.b64decode(stored.split("$")[4], validate=True)
        expected = base64.b64decode(stored.split("$")[5], validate=True)
        if not 16 <= len(expected) <= 64:
            return False
        actual = _scrypt(password, salt, cost, len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    """Whether a hash that just verified was made at a lower cost than today's."""
    cost = parse_cost(stored)
    return cost is None or cost.n < COST.n or cost.r < COST.r or cost.p < COST.p


async def hash_in_pool(password: str) -> str:
    return await _in_pool(hash_password, password)


async def verify_in_pool(password: str, stored: str) -> bool:
    return await _in_pool(verify_password, password, stored)


async def dummy_hash() -> str:
    """A hash at today's cost that no password is known to match: an unknown username is
    checked against it, so that it takes as long to refuse as a wrong password."""
    return await _in_pool(_dummy_hash, COST)


@functools.lru_cache(maxsize=4)
def _dummy_hash(cost: Cost) -> str:
    return hash_password(secrets.token_hex(16), cost)


def _scrypt(password: str, salt: bytes, cost: Cost, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.maxmem,
        dklen=length,
    )


async def _in_pool(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in the password threads; the event loop goes on meanwhile."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="fieldcrm-password")
    return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
