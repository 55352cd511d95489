"""The geocoding job on both engines: accounts with an address and no position get one
through the sync write path; positions people set are never overwritten; addresses that
cannot be placed are marked and left alone until they change; failures back off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import msgspec
import pytest

from geo.geocoding import GeocodeResult, GeocodingUnavailable
from server import db
from server.core.bulk import bulk_write
from server.core.writer import YIELDING, Source
from server.nearby import geocoding
from server.nearby.geocoding import geocode_round, run_geocoder
from server.settings import Settings, load_settings
from tests.factories import Login, login_as, make_account


async def account(client: Any, who: Login, account_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/accounts/{account_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["account"]  # type: ignore[no-any-return]


async def sync(client: Any, who: Login, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/sync/v1", json={"protocol": 1, **body}, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class Unavailable:
    calls = 0

    def geocode_address(self, **address: str | None) -> GeocodeResult | None:
        self.calls += 1
        raise GeocodingUnavailable("HTTP 503 from the test")


class Held:
    """Answers Lyon, but only once the test lets it: the test acts while it is geocoding."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def geocode_address(self, **address: str | None) -> GeocodeResult | None:
        self.started.set()
        self.release.wait(10)
        return GeocodeResult(45.75, 4.85, "city", "test")


async def test_an_address_gets_coordinates_that_devices_pull(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    before = await sync(client, rep, {"client_id": "phone-1", "cursor": None})
    lyon = await make_account(client, rep, name="Bouchon", city="Lyon", country="France")
    assert await geocode_round(settings) == 1

    placed = await account(client, rep, lyon["id"])
    assert abs(placed["lat"] - 45.76) < 0.05 and abs(placed["lng"] - 4.84) < 0.05
    assert placed["geo_precision"] == "city"
    pulled = await sync(client, rep, {"client_id": "phone-1", "cursor": before["cursor"]})
    [change] = [c for c in pulled["changes"] if c["id"] == lyon["id"]]
    assert change["row"]["lat"] == placed["lat"] and change["row"]["geo_precision"] == "city"
    rows = await db.fetch("SELECT clocks FROM accounts WHERE id = {}", lyon["id"])
    assert f'"{YIELDING[Source.GEOCODER]}"' in rows[0]["clocks"]
    assert await geocode_round(settings) == 0
    # Its history (issue 19): the rep's create, then the geocoder's placing, as the server.
    response = await client.get(f"/api/history/accounts/{lyon['id']}", headers=rep.headers)
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert [(e["source"], e["op"]) for e in entries] == [("rest", "create"), ("geocoder", "update")]
    assert entries[1]["user_id"] is None and entries[1]["client_id"] == "server"
    assert entries[1]["fields"]["lat"] == {"old": None, "new": placed["lat"]}
    assert entries[1]["fields"]["geo_precision"]["new"] == "city"


async def test_positions_people_set_and_accounts_without_address_are_left_alone(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    pinned = await make_account(client, rep, city="Lyon", country="France", lat=10.0, lng=20.0)
    await make_account(client, rep, name="No address")
    await make_account(client, rep, street="", city="", country="")
    gone = await make_account(client, rep, city="Paris", country="France")
    assert (
        await client.delete(f"/api/accounts/{gone['id']}", headers=rep.headers)
    ).status_code == 204

    assert await geocode_round(settings) == 0
    kept = await account(client, rep, pinned["id"])
    assert (kept["lat"], kept["lng"], kept["geo_precision"]) == (10.0, 20.0, None)


async def test_an_address_not_found_is_marked_and_not_tried_again_until_it_changes(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    nowhere = await make_account(client, rep, city="Xqzzyville", country="Nowhereland")
    only_country = await make_account(client, rep, country="France")
    assert await geocode_round(settings) == 2
    for row in (nowhere, only_country):
        marked = await account(client, rep, row["id"])
        assert (marked["lat"], marked["lng"], marked["geo_precision"]) == (None, None, "none")
    assert await geocode_round(settings) == 0
    assert await geocode_round(settings, now_ms=int(time.time() * 1000) + 86_400_000) == 0

    fixed = {"city": "Paris", "country": "France"}
    response = await client.patch(f"/api/accounts/{nowhere['id']}", json=fixed, headers=rep.headers)
    assert response.status_code == 200, response.text
    assert await geocode_round(settings) == 1
    paris = await account(client, rep, nowhere["id"])
    assert abs(paris["lat"] - 48.85) < 0.05 and paris["geo_precision"] == "city"


async def test_an_unavailable_service_backs_off_then_retries(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    lyon = await make_account(client, rep, city="Lyon", country="France")
    await make_account(client, rep, city="Paris", country="France")
    down = Unavailable()
    now = int(time.time() * 1000)
    assert await geocode_round(settings, down, now_ms=now) == 1  # the round stops at once
    assert down.calls == 1
    untouched = await account(client, rep, lyon["id"])
    assert untouched["lat"] is None and untouched["geo_precision"] is None
    # The one that failed waits; the other is still tried.
    assert await geocode_round(settings, down, now_ms=now + 1000) == 1
    assert await geocode_round(settings, down, now_ms=now + 2000) == 0
    # After the backoff (a minute, give or take 10%), the service is back.
    assert await geocode_round(settings, now_ms=now + 200_000) == 2
    placed = await account(client, rep, lyon["id"])
    assert placed["geo_precision"] == "city"


async def test_a_position_set_while_geocoding_is_kept(client: Any, settings: Settings) -> None:
    rep = await login_as(client, "rep", "north")
    lyon = await make_account(client, rep, city="Lyon", country="France")
    held = Held()
    round_ = asyncio.create_task(geocode_round(settings, held))
    assert await asyncio.to_thread(held.started.wait, 10)
    response = await client.patch(
        f"/api/accounts/{lyon['id']}", json={"lat": 1.5, "lng": 2.5}, headers=rep.headers
    )
    assert response.status_code == 200, response.text
    held.release.set()
    assert await round_ == 1
    kept = await account(client, rep, lyon["id"])
    assert (kept["lat"], kept["lng"], kept["geo_precision"]) == (1.5, 2.5, None)


async def test_an_offline_position_synced_after_the_geocoder_wins(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    account_id = str(uuid.uuid4())
    clock = int(time.time() * 1000) - 60_000
    fields = {"name": "Cave", "city": "Lyon", "country": "France"}
    create = {"mid": 1, "table": "accounts", "id": account_id, "op": "upsert",
              "fields": fields, "hlc": [clock, 0]}  # fmt: skip
    first = await sync(client, rep, {"client_id": "phone-1", "mutations": [create]})
    [pulled] = [c for c in first["changes"] if c["id"] == account_id]
    # Offline, at the door: the rep sets the exact position. Meanwhile the server geocodes.
    assert await geocode_round(settings) == 1
    assert (await account(client, rep, account_id))["geo_precision"] == "city"
    at_door = {"mid": 2, "table": "accounts", "id": account_id, "op": "upsert",
               "fields": {"lat": 45.7701, "lng": 4.8302}, "base_seq": pulled["seq"],
               "hlc": [clock + 1000, 0]}  # fmt: skip
    second = await sync(client, rep, {"client_id": "phone-1", "cursor": first["cursor"],
                                      "mutations": [at_door]})  # fmt: skip
    assert second["ack"]["results"][0]["status"] == "applied"
    kept = await account(client, rep, account_id)
    assert (kept["lat"], kept["lng"], kept["geo_precision"]) == (45.7701, 4.8302, None)


async def test_two_rounds_at_once_never_geocode_an_account_twice(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    for city in ("Lyon", "Paris", "Marseille", "Toulouse", "Nice", "Nantes"):
        await make_account(client, rep, city=city, country="France")
    counts = await asyncio.gather(geocode_round(settings), geocode_round(settings))
    assert sum(counts) == 6
    assert await geocode_round(settings) == 0


async def test_the_background_loop_places_new_accounts(client: Any, settings: Settings) -> None:
    rep = await login_as(client, "rep", "north")
    loop = asyncio.create_task(run_geocoder(settings, interval_s=0.05))
    try:
        nice = await make_account(client, rep, city="Nice", country="France")
        deadline = time.monotonic() + 10
        while (await account(client, rep, nice["id"]))["lat"] is None:
            assert time.monotonic() < deadline, "the loop did not place the account"
            await asyncio.sleep(0.05)
        assert not loop.done()
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


class Instant:
    """Answers Lyon at once, counting the calls."""

    calls = 0

    def geocode_address(self, **address: str | None) -> GeocodeResult | None:
        self.calls += 1
        return GeocodeResult(45.75, 4.85, "city", "test")


async def test_the_loop_holds_off_while_an_import_writes(client: Any, settings: Settings) -> None:
    rep = await login_as(client, "rep", "north")
    shop = await make_account(client, rep, city="Lyon", country="France")
    geocoder = Instant()
    loop = asyncio.create_task(run_geocoder(settings, geocoder, interval_s=0.01))
    try:
        with bulk_write():
            await asyncio.sleep(0.3)
            assert geocoder.calls == 0
        deadline = time.monotonic() + 10
        while (await account(client, rep, shop["id"]))["lat"] is None:
            assert time.monotonic() < deadline, "the loop did not place the account"
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


def with_geocoder(settings: Settings, environ: dict[str, str]) -> Settings:
    """`settings` with the geocoder these variables configure."""
    return msgspec.structs.replace(settings, geocoder=load_settings(environ).geocoder)


async def test_invalid_geocoder_settings_turn_geocoding_off(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = with_geocoder(settings, {"FIELDCRM_GEOCODER": "no-such-service"})
    monkeypatch.setattr(geocoding, "_default_geocoder", None)
    await asyncio.wait_for(run_geocoder(settings, interval_s=0.01), timeout=5)  # returns


async def test_geocoding_can_be_turned_off(
    client: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = with_geocoder(settings, {"FIELDCRM_GEOCODER": "off"})
    monkeypatch.setattr(geocoding, "_default_geocoder", None)
    rep = await login_as(client, "rep", "north")
    nice = await make_account(client, rep, city="Nice", country="France")
    with caplog.at_level(logging.INFO, logger=geocoding.log.name):
        await asyncio.wait_for(run_geocoder(settings, interval_s=0.01), timeout=5)  # returns
    placed = await account(client, rep, nice["id"])
    assert (placed["lat"], placed["geo_precision"]) == (None, None)
    # Off is a setting, not a mistake: said once at INFO, no error.
    assert [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == geocoding.log.name
    ] == [(logging.INFO, "geocoding is off (FIELDCRM_GEOCODER=off)")]
