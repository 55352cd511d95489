"""Limits on people's writes (docs/limits.md): each user's write rate, and each team's
storage quota.

A request over either is refused whole before any of its writes is applied, and its mids
are not consumed (`sync.protocol.OverLimit`): the phone keeps the writes and sends the
very same ones later, so exactly-once (SPEC 4 rule 2) holds and nothing is lost. A sync
request answers 429 `rate_limited` (with Retry-After) or 413 `quota_exceeded`; a REST
write the same. The server's own jobs (`SYSTEM`) and the other sources of the one writer
(demo, review, ...) are not limited.

- **Rate**: a token bucket per user over every device and the REST API: each write (a
  mutation, replays not counted) costs one token; tokens come back at
  `write_rate_per_min`, up to `write_burst`. A request larger than the burst passes when
  the bucket is full, and the writer then waits its cost off. Kept in the database
  (server/core/usage.py) and spent in the request's write transaction, which holds the
  single writer's lock: exact over any number of server processes.
- **Quota**: a team holds at most `team_quota_records` live records (accounts and what
  hangs off them, and its members' tasks on no account; conflicts and rejections are the
  server's and do not count). A request that would create records past it is refused;
  edits and deletes always pass, so a team over its quota can free space. Creates are
  counted against the writer's team, before the rules run (a create that is then rejected
  still counted for the check).
"""

from __future__ import annotations

import math
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from server.core.actor import Actor
from server.core.fields import SERVER_MADE, TABLES
from server.core.session import Session
from server.core.usage import team_records
from server.settings import (
    DEFAULT_TEAM_QUOTA_RECORDS,
    DEFAULT_WRITE_BURST,
    DEFAULT_WRITE_RATE_PER_MIN,
    Settings,
)
from sync.protocol import Mutation, OverLimit


@dataclass(frozen=True)
class Limits:
    write_rate_per_min: int = DEFAULT_WRITE_RATE_PER_MIN  # 0: no rate limit
    write_burst: int = DEFAULT_WRITE_BURST
    team_quota_records: int = DEFAULT_TEAM_QUOTA_RECORDS  # 0: no quota


# The process's limits: the settings' defaults until the app configures them.
_current = [Limits()]


def configure(settings: Settings) -> None:
    _current[0] = Limits(
        write_rate_per_min=settings.write_rate_per_min,
        write_burst=settings.write_burst,
        team_quota_records=settings.team_quota_records,
    )


def current() -> Limits:
    return _current[0]


async def admit(session: Session, actor: Actor, mutations: Sequence[Mutation], now_ms: int) -> None:
    """Refuse `mutations` (a request's new writes) whole if they pass `actor`'s write rate
    or their team's quota (raises OverLimit); else spend their cost, in `session`."""
    limits = current()
    if actor.is_system or not mutations:
        return
    full_at = None
    if limits.write_rate_per_min:
        full_at = await _budget(session, actor, len(mutations), now_ms, limits)
    if limits.team_quota_records:
        await _check_quota(session, actor, mutations, limits.team_quota_records)
    if full_at is not None:
        session.spend_budget(actor.user_id, full_at)


async def _budget(session: Session, actor: Actor, writes: int, now_ms: int, limits: Limits) -> int:
    """When the writer's bucket is full again once these writes are paid (microseconds);
    raises OverLimit (429) if it does not hold them now."""
    cost_us = 60_000_000 / limits.write_rate_per_min
    burst_us = max(1, limits.write_burst) * cost_us
    now_us = now_ms * 1000
    full_at = max(await session.budgets.full_at(actor.user_id), now_us)
    # Enough comes back by `full_at - (burst - cost)`; a request larger than the burst
    # waits for a full bucket.
    wait_us = full_at - now_us - max(0.0, burst_us - writes * cost_us)
    if wait_us > 0:
        retry_after_s = max(1, math.ceil(wait_us / 1_000_000))
        raise OverLimit(
            429,
            "rate_limited",
            f"Too many changes at once: at most {limits.write_rate_per_min} a minute"
            f" ({limits.write_burst} in a burst). Nothing of this request was applied; send"
            f" the same changes again in {retry_after_s} s.",
            retry_after_s,
        )
    return math.ceil(full_at + writes * cost_us)


# Per write session: at most how many records each team holds, as this session has
# counted them (each upsert counted as a create, which most are not).
_HELD: weakref.WeakKeyDictionary[Session, dict[str, int]] = weakref.WeakKeyDictionary()


async def _check_quota(
    session: Session, actor: Actor, mutations: Sequence[Mutation], quota: int
) -> None:
    upserts = [
        m
        for m in mutations
        if m.op == "upsert" and m.table in TABLES and m.table not in SERVER_MADE
    ]
    if not upserts:
        return  # deletes always pass
    held = _HELD.setdefault(session, {})
    team = actor.team_id
    bound = held.get(team)
    if bound is None or bound + len(upserts) > quota:
        # Exactly, with this transaction's writes so far (they are sent before the query).
        bound = await team_records(team)
        if bound + len(upserts) > quota:
            # Close to the quota: which of these writes make records, precisely.
            creates = await _creates(session, upserts)
            if creates and bound + creates > quota:
                raise OverLimit(
                    413,
                    "quota_exceeded",
                    f"Your team's storage is full: it holds {bound:,} records and may hold"
                    f" {quota:,}. Nothing of this request was applied and your changes are"
                    " kept; delete records the team no longer needs, or ask an"
                    " administrator to raise the limit (FIELDCRM_TEAM_QUOTA_RECORDS).",
                )
            held[team] = bound + creates
            return
    # Far from the quota: no need to know which upserts create a record.
    held[team] = bound + len(upserts)


async def _creates(session: Session, mutations: Sequence[Mutation]) -> int:
    """How many records these upserts would make (those of ids not stored yet)."""
    made: set[tuple[str, str]] = set()
    for mutation in mutations:
        try:
            key = (mutation.table, str(uuid.UUID(mutation.id)))
        except ValueError:
            continue
        if key not in made and await session.load(*key) is None:
            made.add(key)
    return len(made)
