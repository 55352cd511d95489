"""The background jobs `fieldcrm serve` runs beside the API and `fieldcrm worker` runs
alone: the reminder dispatcher, the geocoder, the auth tables' purge and the retention of
history (which also finishes erasures' reclaims), and, once at the start, the merges that a
stopped process left half-way (docs/merge.md). Any number of
processes may run them: the dispatcher and the geocoder claim their work in the database,
and the purge only deletes rows nobody needs any more."""

from __future__ import annotations

import asyncio

from server.auth.purge import run_purge
from server.merging.services import finish_cut_short
from server.nearby.geocoding import run_geocoder
from server.privacy.retention import run_retention
from server.push.dispatcher import run_dispatcher
from server.settings import Settings


async def run_background_jobs(settings: Settings) -> None:
    """Run every job until cancelled; each job survives its own failures."""
    await asyncio.gather(
        run_dispatcher(settings),
        run_geocoder(settings),
        run_purge(settings),
        run_retention(settings),
        finish_cut_short(),
    )
