"""The auth tables' housekeeping, a background job: login attempts that no longer count
(older than the throttle's window) and dead tokens (expired or revoked) are deleted.

Each run deletes at most `BATCH * MAX_BATCHES` rows of each table, a batch per statement,
so that it never holds the database for long (on SQLite each statement takes the writer's
turn); what is left goes at the next run. Several processes may run it: deleting what is
already deleted does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server import db
from server.settings import Settings

log = logging.getLogger("fieldcrm.auth")

PURGE_INTERVAL_S = 600.0
BATCH = 1000
MAX_BATCHES = 20


@dataclass(frozen=True)
class Purged:
    attempts: int
    tokens: int


async def run_purge(settings: Settings) -> None:
    """Purge every PURGE_INTERVAL_S, forever; a failed run is logged and the next goes on."""
    while True:
        try:
            purged = await purge(settings)
            if purged.attempts or purged.tokens:
                log.info(
                    "purged %d old login attempts and %d dead tokens",
                    purged.attempts,
                    purged.tokens,
                )
        except Exception:
            log.exception("auth purge failed; trying again in %s s", PURGE_INTERVAL_S)
        await asyncio.sleep(PURGE_INTERVAL_S)


async def purge(
    settings: Settings,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> Purged:
    """One run: at most `batch * max_batches` rows of each table."""
    now = now or datetime.now(UTC)
    attempts = await _delete(
        "login_attempts",
        "at < {}",
        (now - timedelta(seconds=settings.login_window_s),),
        batch,
        max_batches,
    )
    tokens = await _delete(
        "auth_tokens", "expires_at < {} OR revoked_at < {}", (now, now), batch, max_batches
    )
    return Purged(attempts=attempts, tokens=tokens)


async def _delete(
    table: str, where: str, args: tuple[object, ...], batch: int, max_batches: int
) -> int:
    deleted = 0
    for _ in range(max_batches):
        rows = await db.fetch(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT {{}})"
            " RETURNING id",
            *args,
            batch,
        )
        deleted += len(rows)
        if len(rows) < batch:
            break
    return deleted
