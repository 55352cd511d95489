"""The sync store's shortcuts, on both engines: the cache of pulled rows (WIRE_ROWS) holds
a version only once its transaction has committed, devices see what the database holds
whichever device pulled a version first, and new rows held back to be inserted together
are there for every later statement of their request."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
import pytest

from server.core import store
from tests.contract.sim import (
    Device,
    add_team,
    engine_link,
    server_rows,
    stored_records,
    sync_until_done,
)


async def test_a_pull_in_a_rolled_back_transaction_caches_nothing(
    started_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (ann,) = await add_team(["rep"])
    now = int(time.time() * 1000)
    link = engine_link(ann, lambda: now)
    account = str(uuid.uuid4())

    # The first try pushes and pulls the new account, then fails before it commits.
    phone = Device(ann.user_id)
    phone.write("accounts", account, "upsert", {"name": "Acme"}, now)
    real_flush = store.Session.flush

    async def failing_flush(self: store.Session) -> None:
        await real_flush(self)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(store.Session, "flush", failing_flush)
    with pytest.raises(RuntimeError):
        await sync_until_done(phone, link)
    monkeypatch.setattr(store.Session, "flush", real_flush)

    # The same seq now goes to another version of the account.
    tablet = Device(ann.user_id)
    tablet.write("accounts", account, "upsert", {"name": "Bolt"}, now + 1)
    await sync_until_done(tablet, link)
    fresh = Device(ann.user_id)
    await sync_until_done(fresh, link)
    assert fresh.rows[("accounts", account)]["name"] == "Bolt"
    assert fresh.rows == tablet.rows == await server_rows(ann)


async def test_devices_pulling_one_version_share_it_and_see_the_next(started_db: Any) -> None:
    _, (ann, bob) = await add_team(["rep", "rep"])
    now = int(time.time() * 1000)
    account = str(uuid.uuid4())
    phone = Device(ann.user_id)
    phone.write("accounts", account, "upsert", {"name": "Acme"}, now)
    await sync_until_done(phone, engine_link(ann, lambda: now))
    bobs = [Device(bob.user_id) for _ in range(3)]
    for device in bobs:
        await sync_until_done(device, engine_link(bob, lambda: now))
    rows = [device.rows[("accounts", account)] for device in bobs]
    assert rows[0] == rows[1] == rows[2] and rows[0]["name"] == "Acme"
    phone.write("accounts", account, "upsert", {"name": "Acme Ltd"}, now + 1)
    await sync_until_done(phone, engine_link(ann, lambda: now))
    for device in bobs:
        await sync_until_done(device, engine_link(bob, lambda: now))
        assert device.rows == await server_rows(bob)
        assert device.rows[("accounts", account)]["name"] == "Acme Ltd"


async def test_rows_created_in_a_request_are_there_for_its_later_writes(started_db: Any) -> None:
    """A visit checked in against an account made earlier in the same request is verified
    against its position, and every row of the request is stored."""
    _, (ann,) = await add_team(["rep"])
    now = int(time.time() * 1000)
    account, visit, note = (str(uuid.uuid4()) for _ in range(3))
    phone = Device(ann.user_id)
    phone.write("accounts", account, "upsert", {"name": "Acme", "lat": 45.76, "lng": 4.84}, now)
    phone.write(
        "visits",
        visit,
        "upsert",
        {
            "account_id": account,
            "started_at": "2026-11-23T09:00:00Z",
            "lat": 45.7601,
            "lng": 4.8401,
            "accuracy_m": 10,
        },
        now,
    )
    note_fields = {"account_id": account, "visit_id": visit, "body": "Wants a quote."}
    phone.write("notes", note, "upsert", note_fields, now)
    phone.write("accounts", account, "upsert", {"city": "Lyon"}, now + 1)
    await sync_until_done(phone, engine_link(ann, lambda: now))
    rows = await server_rows(ann)
    assert rows[("visits", visit)]["verification"] == "verified"
    assert rows[("notes", note)]["visit_id"] == visit
    assert rows[("accounts", account)]["city"] == "Lyon"
    assert phone.rows == rows


async def test_an_account_deleted_in_the_request_that_made_its_contacts_takes_them(
    started_db: Any,
) -> None:
    """Rows held back to be inserted together are in the table before any later statement
    of their request: deleting an account finds its children with SQL."""
    _, (ann,) = await add_team(["rep"])
    now = int(time.time() * 1000)
    account, first, second = (str(uuid.uuid4()) for _ in range(3))
    phone = Device(ann.user_id)
    phone.write("accounts", account, "upsert", {"name": "Acme"}, now)
    for contact in (first, second):
        phone.write("contacts", contact, "upsert", {"account_id": account, "name": "Al"}, now)
    phone.write("accounts", account, "delete", None, now)
    await sync_until_done(phone, engine_link(ann, lambda: now))
    stored = await stored_records("contacts", [first, second])
    assert [stored[c].deleted for c in (first, second)] == [True, True]
    assert await server_rows(ann) == phone.rows == {}


async def test_rows_a_request_wrote_are_cached_exactly_as_the_table_holds_them(
    started_db: Any,
) -> None:
    """A write session keeps the records it writes, and after the commit their rows go to
    WIRE_ROWS for the devices that pull them next. Each must be what a read of the table
    gives, value for value and type for type, for every kind of field."""
    _, (ann, bob) = await add_team(["rep", "rep"])
    now = int(time.time() * 1000)
    account, gone, contact, visit, note, task, deal = (str(uuid.uuid4()) for _ in range(7))
    phone = Device(ann.user_id)
    phone.write(
        "accounts",
        account,
        "upsert",
        {
            "name": "Acme",
            "status": "customer",
            "phone": "+33 4 00",
            "email": "a@acme.test",
            "website": "https://acme.test",
            "street": "1 rue de la Paix",
            "city": "Lyon",
            "postal_code": "69001",
            "country": "FR",
            "lat": 45.76,
            "lng": 4,
        },
        now,
    )
    phone.write("accounts", gone, "upsert", {"name": "Gone"}, now)
    phone.write("contacts", contact, "upsert", {"account_id": account, "name": "Al"}, now)
    visit_fields = {
        "account_id": account,
        "started_at": "2026-11-23T09:00:00.123456+02:00",
        "lat": 45.7601,
        "lng": 4.0001,
        "accuracy_m": 10,
    }
    phone.write("visits", visit, "upsert", visit_fields, now)
    note_fields = {"account_id": account, "visit_id": visit, "body": "Wants a quote."}
    phone.write("notes", note, "upsert", note_fields, now)
    task_fields = {
        "title": "Call back",
        "account_id": account,
        "due_at": "2026-11-25T08:00:00Z",
        "remind_at": "2026-11-25T07:30:00Z",
    }
    phone.write("tasks", task, "upsert", task_fields, now)
    deal_fields = {
        "account_id": account,
        "title": "Fleet",
        "amount": 1200,
        "currency": "EUR",
        "close_date": "2026-12-31",
    }
    phone.write("deals", deal, "upsert", deal_fields, now)
    phone.write("accounts", account, "upsert", {"city": "Lyon 2e"}, now + 1)
    phone.write("visits", visit, "upsert", {"ended_at": "2026-11-23T09:30:00Z"}, now + 1)
    phone.write("tasks", task, "upsert", {"done": True}, now + 1)
    phone.write("accounts", gone, "delete", None, now + 1)
    await sync_until_done(phone, engine_link(ann, lambda: now))
    # Bob, from an older copy, sets the city too: his value wins, Ann's goes to a
    # conflicts row; he also writes the same phone again (only its clock moves).
    tablet = Device(bob.user_id)
    tablet.write("accounts", account, "upsert", {"city": "Villeurbanne"}, now + 2)
    tablet.write("accounts", account, "upsert", {"phone": "+33 4 00"}, now + 3)
    tablet.seqs[("accounts", account)] = 1
    await sync_until_done(tablet, engine_link(bob, lambda: now))

    epoch = await store.STORE.epoch()
    checked = 0
    for table, record_id in await server_rows(ann):
        record = (await stored_records(table, [record_id]))[record_id]
        cached = store.WIRE_ROWS.get((epoch, table, record_id, record.seq))
        assert cached is not None, (table, record_id)
        read = store.wire_row(record)
        assert cached.values == read, (table, record_id)
        assert {k: type(v) for k, v in cached.values.items()} == {
            k: type(v) for k, v in read.items()
        }
        as_sent = msgspec.json.encode(cached.values, order="sorted")
        assert as_sent == msgspec.json.encode(read, order="sorted")
        checked += 1
    # the account, contact, visit, note, task, deal and the conflict
    assert checked == 7
