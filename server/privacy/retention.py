"""The retention of history and conflict values, a background job (docs/privacy.md): with
FIELDCRM_HISTORY_RETENTION_DAYS set, history entries and conflicts older than that are
removed (conflicts from the phones too); unset, they are kept forever. The job also
finishes the reclaims of erasures that a stopped process left undone
(server/core/erasure.py).

Any number of processes may run it: each step is a write transaction of the one writer
that reads what is left to do inside it, so two processes never remove the same thing
twice, and what one leaves the next run takes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server import db
from server.core.erasure import reclaim_pending
from server.core.history import cut_before
from server.core.rows import record_from_row
from server.core.writer import Source, writing
from server.settings import Settings

log = logging.getLogger("fieldcrm.privacy")

RETENTION_INTERVAL_S = 3600.0
BATCH = 500  # conflicts per write transaction


@dataclass(frozen=True)
class Expired:
    entries: int  # history entries removed
    conflicts: int  # conflicts removed


async def run_retention(settings: Settings) -> None:
    """Every RETENTION_INTERVAL_S, forever; a failed run is logged and the next goes on."""
    while True:
        try:
            reclaimed = await reclaim_pending()
            if reclaimed:
                log.info("reclaimed the space of %d erasures", reclaimed)
            if settings.history_retention_days:
                expired = await expire(settings.history_retention_days)
                if expired.entries or expired.conflicts:
                    log.info(
                        "retention: removed %d history entries and %d conflicts",
                        expired.entries,
                        expired.conflicts,
                    )
        except Exception:
            log.exception("the retention job failed; trying again in %s s", RETENTION_INTERVAL_S)
        await asyncio.sleep(RETENTION_INTERVAL_S)


async def expire(days: int, *, now: datetime | None = None) -> Expired:
    """Remove history entries and conflicts stored more than `days` days before `now`."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    entries = await cut_before(cutoff)
    conflicts = 0
    while True:
        # Through the one writer: the phones that hold a conflict are told to drop it.
        async with writing(Source.RETENTION) as writer:
            rows = await db.fetch(
                "SELECT * FROM conflicts WHERE created_at < {} ORDER BY created_at LIMIT {}",
                cutoff,
                BATCH,
            )
            records = [record_from_row("conflicts", row) for row in rows]
            await writer.session.expunge(records, None, erase=False)
        conflicts += len(records)
        if len(records) < BATCH:
            return Expired(entries, conflicts)
