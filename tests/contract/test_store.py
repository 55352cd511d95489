"""The sync store's shortcuts, on both engines: the cache of pulled rows (WIRE_ROWS) holds
a version only once its transaction has committed, devices see what the database holds
whichever device pulled a version first, and new rows held back to be inserted together
are there for every later statement of their request."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from server import db
from server.syncing import store
from tests.contract.sim import Device, add_team, engine_link, server_rows, sync_until_done


async def test_a_pull_in_a_rolled_back_transaction_caches_nothing(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.configure(database.config)
    await db.start()
    try:
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
    finally:
        await db.stop()


async def test_devices_pulling_one_version_share_it_and_see_the_next(database: Any) -> None:
    db.configure(database.config)
    await db.start()
    try:
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
    finally:
        await db.stop()


async def test_rows_created_in_a_request_are_there_for_its_later_writes(database: Any) -> None:
    """New rows are inserted together, before the request's next statement: a visit
    checked in against an account made earlier in the same request is verified against
    its position (read with SQL, not through the session's cache)."""
    db.configure(database.config)
    await db.start()
    try:
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
    finally:
        await db.stop()
