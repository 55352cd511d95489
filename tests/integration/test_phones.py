"""accounts.phone_e164 (SPEC section 3): kept by the server on every write, for the
account's country or the organisation's, and filled for existing accounts by its
migration. On both engines."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from server import db
from server.core.phones import e164, set_default_region
from tests.factories import login_as, make_account


@pytest.fixture
def french_organisation() -> Any:
    set_default_region("FR")
    yield
    set_default_region(None)


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("+33 4 78 00 00 00", None, "+33478000000"),
        ("0033 4 78 00 00 00", "FR", "+33478000000"),
        ("04 78 00 00 00", "France", "+33478000000"),
        ("04.78.00.00.00", "france", "+33478000000"),
        ("(415) 555-0100", "USA", "+14155550100"),
        ("030 1234567", "Deutschland", "+49301234567"),
        ("06 1234567", "Italia", "+39061234567"),
        ("04 78 00 00 00", None, None),  # national, and no country known
        ("not a phone", "FR", None),
        ("06 12", "FR", None),
        ("", "FR", None),
    ],
)
def test_e164(phone: str, country: str | None, expected: str | None) -> None:
    assert e164(phone, country) == expected


def test_the_default_region_reads_national_numbers(french_organisation: Any) -> None:
    assert e164("04 78 00 00 00") == "+33478000000"
    assert e164("(415) 555-0100", "US") == "+14155550100"  # the account's country first


async def test_every_write_keeps_phone_e164(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    shop = await make_account(client, rep, name="Laurent", phone="04 78 00 00 00", country="FR")
    assert shop["phone_e164"] == "+33478000000"
    changed = await client.patch(
        f"/api/accounts/{shop['id']}", json={"phone": "06 12 34 56 78"}, headers=rep.headers
    )
    assert changed.json()["phone_e164"] == "+33612345678"
    moved = await client.patch(
        f"/api/accounts/{shop['id']}", json={"country": "Belgique"}, headers=rep.headers
    )
    assert moved.json()["phone_e164"] == "+32612345678"
    cleared = await client.patch(
        f"/api/accounts/{shop['id']}", json={"phone": None}, headers=rep.headers
    )
    assert cleared.json()["phone_e164"] is None
    refused = await client.patch(
        f"/api/accounts/{shop['id']}", json={"phone_e164": "+1"}, headers=rep.headers
    )
    assert refused.status_code == 422 and refused.json()["error"] == "read_only"


async def test_the_migration_fills_existing_accounts(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    one = await make_account(client, rep, name="One", phone="+33 4 78 00 00 01")
    two = await make_account(client, rep, name="Two", phone="0478000002", country="FR")
    three = await make_account(client, rep, name="Three", phone="??")
    await db.fetch("UPDATE accounts SET phone_e164 = NULL")
    migration = importlib.import_module(
        "server.core.piccolo_migrations.records_2026_12_06t08_50_00_000000"
    )
    manager = await migration.forwards()
    backfill = manager.raw[0]
    migration.STATEMENTS = []  # the column is there already
    migration.engine_finder = db.engine  # as server/migrate.py points Piccolo at it
    try:
        await backfill()
    finally:
        importlib.reload(migration)
    rows = {r["id"]: r["phone_e164"] for r in await db.fetch("SELECT id, phone_e164 FROM accounts")}
    assert rows == {one["id"]: "+33478000001", two["id"]: "+33478000002", three["id"]: None}
