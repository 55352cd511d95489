"""The background jobs `fieldcrm serve` runs beside the API and `fieldcrm worker` runs
alone: the reminder dispatcher and the geocoder. Each claims its work in the database, so
any number of processes may run them."""

from __future__ import annotations

import asyncio

from server.nearby.geocoding import run_geocoder
from server.push.dispatcher import run_dispatcher
from server.settings import Settings


async def run_background_jobs(settings: Settings) -> None:
    """Run every job until cancelled; each job survives its own failures."""
    await asyncio.gather(run_dispatcher(settings), run_geocoder(settings))
