"""Giving accounts with an address and no position their coordinates, off the request path.

`run_geocoder` runs rounds a few seconds apart. A round has three steps:

1. **Claim**: up to BATCH accounts, not deleted, with neither lat nor lng and some
   address, that are not waiting: an address that was not found is not tried again until
   it changes, and an account whose geocoding failed waits its backoff. They are found
   without the writer's lock, then checked again by id and leased under it, so several
   processes never take the same accounts: each claimed account gets a lease in
   `geocoding_attempts`, so a process that dies holding it only delays it.
2. **Geocode** each address with `geo.geocoder_from_env()` (the offline gazetteer unless
   configured otherwise, answering from a child process: geo/gazetteer_process.py) in a
   worker thread, since geocoders block. `GeocodingUnavailable`
   (the service is down or refusing) ends the round: that account backs off, the rest are
   released, and the loop itself waits longer before the next round.
3. **Write** through the one writer (source `geocoder`), SAVE_BATCH accounts a write
   transaction, so devices pull the change like any other and people's writes never wait
   long: lat, lng and geo_precision for an address placed at its street, postcode or
   city; geo_precision "none" for one that was not found, or only as a region or a country
   (such a point would mislead a nearby search and a visit's check-in). Only when the
   account still has no position and the same address: a position that someone set is
   never overwritten.

The geocoder's writes carry the clock of the fields they fill, plus one: any person's later
write wins over them, even one made offline before the geocoder ran and synced after it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from geo.gazetteer import OfflineGeocoder
from geo.gazetteer_process import OfflineGeocoderProcess
from geo.geocoders import geocoder_from_env, geocoding_is_off
from geo.geocoding import Geocoder, GeocodeResult, GeocodingUnavailable
from server import db
from server.core.actor import SYSTEM
from server.core.bulk import bulk_write_running
from server.core.writer import Edit, Source, Writer, writing
from server.settings import Settings
from sync.engine import StoredRecord

log = logging.getLogger("fieldcrm.geocoding")

INTERVAL_S = 5.0  # between rounds that found nothing more to do
BATCH = 100  # accounts claimed per round
# Accounts written per write transaction: about 1 ms each on a loaded 2-core machine, so
# a phone's sync never waits more than some 20 ms behind the geocoder (bench/import.py).
SAVE_BATCH = 20
ROUND_BUDGET_S = 30.0  # a round stops geocoding after this long and writes what it has
LEASE_MS = 120_000  # a claim outlives a round: the budget plus one slow online request
RETRY_BASE_S = 60.0  # an account whose geocoding failed waits 1 min, 2, 4, ... up to 6 h
RETRY_MAX_S = 6 * 3600.0
LOOP_BACKOFF_MAX_S = 300.0  # the service down: rounds 10 s, 20 s, ... up to 5 min apart
BULK_WAIT_S = 0.5  # while an import writes, how often the loop looks whether it has ended

ADDRESS = ("street", "city", "region", "postal_code", "country")
PLACED = frozenset({"street", "postcode", "city", "unknown"})  # precise enough to place
NOT_FOUND = "none"  # geo_precision of an account whose address could not be placed

Address = tuple[str | None, ...]  # in ADDRESS order

_ADDRESS_GIVEN = " OR ".join(f"COALESCE(a.{name}, '') <> ''" for name in ADDRESS)
_ADDRESS_CHANGED = " OR ".join(f"COALESCE(g.{n}, '') <> COALESCE(a.{n}, '')" for n in ADDRESS)
_WAITING = (
    "SELECT a.id, a.street, a.city, a.region, a.postal_code, a.country, g.failures"
    " FROM accounts a LEFT JOIN geocoding_attempts g ON g.account_id = a.id"
    " WHERE a.deleted = false AND a.lat IS NULL AND a.lng IS NULL"
    f" AND ({_ADDRESS_GIVEN})"
    " AND (g.account_id IS NULL OR (COALESCE(g.retry_at, 0) <= {}"
    f" AND (g.outcome <> 'not_found' OR {_ADDRESS_CHANGED})))"
    " ORDER BY a.seq LIMIT {}"
)
_UPSERT = (
    "INSERT INTO geocoding_attempts (account_id, street, city, region, postal_code, country,"
    " outcome, failures, retry_at, attempted_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
    " ON CONFLICT (account_id) DO UPDATE SET %s"
)
_CLAIM = _UPSERT % "retry_at = EXCLUDED.retry_at"
_REMEMBER = _UPSERT % ", ".join(
    f"{name} = EXCLUDED.{name}"
    for name in (*ADDRESS, "outcome", "failures", "retry_at", "attempted_at")
)


@dataclass(frozen=True)
class Claimed:
    """An account the round took: its address as it was read, and its earlier failures."""

    id: str
    address: Address
    failures: int


@dataclass
class RoundReport:
    """What one round did, for the log, the loop's pace and tests."""

    attempted: int = 0  # addresses handed to the geocoder
    placed: int = 0  # accounts given coordinates
    not_found: int = 0  # marked geo_precision "none"
    failed: int = 0  # the service could not answer: backing off
    skipped: int = 0  # a position was set, the address changed or the account went meanwhile
    full: bool = False  # it claimed a whole batch: there may be more to do at once
    details: list[str] = field(default_factory=list)


_default_geocoder: Geocoder | None = None


def default_geocoder(settings: Settings) -> Geocoder:
    """The process's geocoder, as the FIELDCRM_GEOCODER* variables configure it."""
    global _default_geocoder
    if _default_geocoder is None:
        geocoder = geocoder_from_env(settings.geocoder)
        if isinstance(geocoder, OfflineGeocoder):
            # Its index's build (seconds of Python) and its lookups, in this process,
            # would hold the interpreter's lock against the event loop.
            geocoder = OfflineGeocoderProcess(geocoder.min_population)
        _default_geocoder = geocoder
    return _default_geocoder


async def run_geocoder(
    settings: Settings, geocoder: Geocoder | None = None, *, interval_s: float = INTERVAL_S
) -> None:
    """Run geocoding rounds forever: at once while there is a backlog, `interval_s` apart
    when there is none, further apart while the service fails, none while this process
    runs a bulk write (an import: server/core/bulk.py). A failed round is logged and the
    loop goes on (the database may be back by then)."""
    if geocoder is None:
        if geocoding_is_off(settings.geocoder):
            log.info("geocoding is off (FIELDCRM_GEOCODER=off)")
            return
        try:
            geocoder = default_geocoder(settings)
        except ValueError:
            # Call geocoder_from_env() at start to refuse to start instead (docs/geo.md).
            log.exception("geocoding is off: the FIELDCRM_GEOCODER* settings are invalid")
            return
    failing_rounds = 0
    while True:
        if bulk_write_running():
            await asyncio.sleep(BULK_WAIT_S)  # see server/core/bulk.py
            continue
        pause = interval_s
        try:
            report = await run_round(geocoder)
            if report.placed or report.not_found or report.failed:
                log.info(
                    "geocoding: %d placed, %d not found, %d failed, %d skipped",
                    report.placed, report.not_found, report.failed, report.skipped,
                )  # fmt: skip
            failing_rounds = failing_rounds + 1 if report.failed else 0
            if report.full and not report.failed:
                pause = 0.0
        except Exception:
            failing_rounds += 1
            log.exception("geocoding round failed")
        if failing_rounds:
            pause = min(interval_s * 2**failing_rounds, LOOP_BACKOFF_MAX_S)
        await asyncio.sleep(pause)


async def geocode_round(
    settings: Settings, geocoder: Geocoder | None = None, *, now_ms: int | None = None
) -> int:
    """One round (for tests and tools): the number of addresses it handed to the geocoder.
    `now_ms` fixes the round's clock, e.g. to step past a backoff."""
    report = await run_round(geocoder or default_geocoder(settings), now_ms=now_ms)
    return report.attempted


async def run_round(geocoder: Geocoder, *, now_ms: int | None = None) -> RoundReport:
    now = now_ms if now_ms is not None else _now_ms()
    report = RoundReport()
    claimed = await claim(now)
    report.full = len(claimed) >= BATCH
    results: list[tuple[Claimed, GeocodeResult | None]] = []
    failed: Claimed | None = None
    deadline = time.monotonic() + ROUND_BUDGET_S
    for account in claimed:
        if time.monotonic() > deadline:
            break
        report.attempted += 1
        try:
            result = await asyncio.to_thread(geocoder.geocode_address, **_fields(account.address))
        except GeocodingUnavailable as exc:
            failed = account
            report.details.append(f"{account.id}: {exc}")
            break
        except Exception:
            # A bug or an answer the adapter did not expect: this address backs off alone.
            log.exception("geocoding account %s failed", account.id)
            failed = account
            break
        results.append((account, result))
    if claimed:
        done = {account.id for account, _ in results} | ({failed.id} if failed else set())
        unattempted = [account for account in claimed if account.id not in done]
        await save(results, failed, unattempted, now, report)
    return report


async def claim(now_ms: int) -> list[Claimed]:
    """Take up to BATCH waiting accounts, with a lease. The waiting accounts are found
    without the writer's lock (a search through the accounts without a position, off the
    event loop: tens of ms once there are many); then, under the lock (so several
    processes never take the same accounts), only those found are checked again by id,
    and leased."""
    try:
        found = await db.fetch(_WAITING, now_ms, BATCH, slow=True)
    except db.StatementTimeout:
        found = await db.fetch(_WAITING, now_ms, BATCH)  # a huge backlog: slower, no limit
    if not found:
        return []  # the usual case: no need to hold up writers to learn it
    ids = [str(row["id"]) for row in found]
    among = _WAITING.replace(" ORDER BY", f" AND a.id IN ({', '.join('{}' for _ in ids)}) ORDER BY")
    async with db.write_transaction():
        rows = await db.fetch(among, now_ms, *ids, BATCH)
        claimed = [
            Claimed(str(r["id"]), tuple(r[n] for n in ADDRESS), int(r["failures"] or 0))
            for r in rows
        ]
        for account in claimed:
            await db.fetch(
                _CLAIM,
                account.id,
                *([None] * len(ADDRESS)),
                "pending",
                0,
                now_ms + LEASE_MS,
                now_ms,
            )
    return claimed


async def save(
    results: Sequence[tuple[Claimed, GeocodeResult | None]],
    failed: Claimed | None,
    unattempted: Sequence[Claimed],
    now_ms: int,
    report: RoundReport,
) -> None:
    """Write what the round learnt through the one writer, SAVE_BATCH accounts a write
    transaction, so that people's writes never wait long for the writer's lock (each
    account's lease keeps it from other rounds meanwhile)."""
    for start in range(0, len(results), SAVE_BATCH):
        async with writing(Source.GEOCODER) as writer:
            for account, result in results[start : start + SAVE_BATCH]:
                await _settle(writer, account, result, now_ms, report)
    if failed is None and not unattempted:
        return
    async with db.write_transaction():
        if failed is not None:
            report.failed += 1
            delay_s = min(RETRY_BASE_S * 2**failed.failures, RETRY_MAX_S)
            delay_s *= random.uniform(0.9, 1.1)  # retries from many accounts do not bunch up
            await _remember(
                failed, "failed", failed.failures + 1, now_ms + int(delay_s * 1000), now_ms
            )
        for account in unattempted:
            await db.fetch(
                "UPDATE geocoding_attempts SET retry_at = NULL WHERE account_id = {}", account.id
            )


async def _settle(
    writer: Writer,
    account: Claimed,
    result: GeocodeResult | None,
    now_ms: int,
    report: RoundReport,
) -> None:
    record = await writer.load("accounts", account.id)
    if record is None or record.deleted or _has_position(record):
        report.skipped += 1
        await _forget(account.id)
        return
    if _address(record.values) != account.address:
        report.skipped += 1  # changed while it was geocoded: the next round takes the new one
        await db.fetch(
            "UPDATE geocoding_attempts SET retry_at = NULL WHERE account_id = {}", account.id
        )
        return
    if result is not None and result.precision in PLACED:
        report.placed += 1
        await _fill(
            writer,
            record,
            {"lat": result.lat, "lng": result.lng, "geo_precision": result.precision},
        )
        await _forget(account.id)
        return
    report.not_found += 1
    if record.values.get("geo_precision") != NOT_FOUND:
        await _fill(writer, record, {"geo_precision": NOT_FOUND})
    await _remember(account, "not_found", 0, None, now_ms)


async def _fill(writer: Writer, record: StoredRecord, changed: dict[str, Any]) -> None:
    """Write fields through the one writer, yielding to people's writes (module docstring)."""
    await writer.apply(SYSTEM, Edit("accounts", record.id, changed))


async def _remember(
    account: Claimed, outcome: str, failures: int, retry_at: int | None, now_ms: int
) -> None:
    await db.fetch(_REMEMBER, account.id, *account.address, outcome, failures, retry_at, now_ms)


async def _forget(account_id: str) -> None:
    await db.fetch("DELETE FROM geocoding_attempts WHERE account_id = {}", account_id)


def _has_position(record: StoredRecord) -> bool:
    return record.values.get("lat") is not None or record.values.get("lng") is not None


def _address(values: dict[str, Any]) -> Address:
    return tuple(values.get(name) for name in ADDRESS)


def _fields(address: Address) -> dict[str, str | None]:
    return {
        name: value.strip() or None if isinstance(value, str) else None
        for name, value in zip(ADDRESS, address, strict=True)
    }


def _now_ms() -> int:
    return int(time.time() * 1000)
