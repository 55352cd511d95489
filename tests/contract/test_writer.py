"""The one writer (server/core/writer.py), on SQLite and PostgreSQL: server-side writes from
every source pass the same rules as a phone's, reach phones through the change log, and
commit or roll back as one transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server import db
from server.core.actor import SERVER_CLIENT_ID, SYSTEM, Actor
from server.core.writer import YIELDING, Edit, Source, writing
from sync.protocol import Rejected
from tests.contract.helpers import Device, new_id
from tests.factories import login_as


def actor_of(login) -> Actor:
    return Actor(login.user_id, login.username, login.role, login.team_id)


async def _clocks(table: str, record_id: str) -> dict[str, list]:
    rows = await db.fetch(f"SELECT clocks FROM {table} WHERE id = {{}}", record_id)
    return json.loads(rows[0]["clocks"])


@pytest.fixture
async def rep(client):
    login = await login_as(client, "rep", "north")
    return login, Device(client, login)


async def test_a_persons_write_reaches_their_phone(rep):
    login, phone = rep
    await phone.pull_all()
    account = new_id()
    async with writing(Source.REST) as writer:
        status = await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Laurent"}))
    assert status == "applied"
    await phone.pull_all()
    row = phone.rows[("accounts", account)]
    assert row is not None and row["name"] == "Laurent" and row["owner_id"] == login.user_id
    stamp = (await _clocks("accounts", account))["name"]
    assert stamp[2] == SERVER_CLIENT_ID and stamp[3] == login.user_id


async def test_the_server_writes_the_fields_it_keeps_and_a_person_cannot(rep):
    login, phone = rep
    task = new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("tasks", task, {"title": "Call back"}))
    await phone.pull_all()
    reminded = datetime(2026, 12, 6, 9, 30, tzinfo=UTC).isoformat()
    with pytest.raises(Rejected) as refused:
        async with writing(Source.REST) as writer:
            await writer.apply(actor_of(login), Edit("tasks", task, {"reminded_at": reminded}))
    assert refused.value.error == "read_only"
    async with writing(Source.REMINDER) as writer:
        assert await writer.apply_all(SYSTEM, [Edit("tasks", task, {"reminded_at": reminded})])
    await phone.pull_all()
    assert phone.rows[("tasks", task)]["reminded_at"].startswith("2026-12-06T09:30:00")
    stamp = (await _clocks("tasks", task))["reminded_at"]
    assert stamp[2] == SERVER_CLIENT_ID and stamp[3] is None  # the server's, no user's


async def test_the_writer_checks_what_a_person_may_see(client, rep):
    login, _ = rep
    other = await login_as(client, "rep", "south")
    account = new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(other), Edit("accounts", account, {"name": "Theirs"}))
    with pytest.raises(Rejected) as refused:
        async with writing(Source.REST) as writer:
            await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Mine now"}))
    assert refused.value.error == "not_found"
    rows = await db.fetch("SELECT name FROM accounts WHERE id = {}", account)
    assert rows[0]["name"] == "Theirs"


async def test_a_block_that_raises_leaves_nothing(rep):
    login, phone = rep
    await phone.pull_all()
    kept, dropped = new_id(), new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", kept, {"name": "Kept"}))
    with pytest.raises(RuntimeError):
        async with writing(Source.REST) as writer:
            await writer.apply(actor_of(login), Edit("accounts", dropped, {"name": "Dropped"}))
            raise RuntimeError("the job failed after its write")
    assert not await db.fetch("SELECT id FROM accounts WHERE id = {}", dropped)
    changes = await phone.pull_all()
    assert ("accounts", kept) in phone.rows and ("accounts", dropped) not in phone.rows
    assert all(change["id"] != dropped for change in changes)


async def test_a_server_write_over_a_phones_value_keeps_no_conflict(rep):
    """The server writes against the record as it is now (base_seq), so replacing a value
    it has seen is not a conflict (rule 5b is for writers that had not seen it)."""
    login, phone = rep
    account = new_id()
    await phone.sync(phone.write("accounts", account, {"name": "From the phone"}))
    async with writing(Source.REST) as writer:
        assert await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Fixed"}))
    assert not await db.fetch("SELECT id FROM conflicts WHERE record_id = {}", account)


async def test_a_yielding_source_loses_to_a_persons_next_write(rep):
    login, phone = rep
    account = new_id()
    await phone.sync(phone.write("accounts", account, {"name": "Gare", "city": "Lyon"}))
    async with writing(Source.GEOCODER) as writer:
        await writer.apply(SYSTEM, Edit("accounts", account, {"lat": 45.76, "lng": 4.83}))
    stamp = (await _clocks("accounts", account))["lat"]
    assert stamp[2] == YIELDING[Source.GEOCODER]
    # A write the phone made right after its first, before the geocoder ran: it wins.
    created = (await _clocks("accounts", account))["name"]
    await phone.pull_all()
    await phone.sync(
        phone.write(
            "accounts", account, {"lat": 45.0, "lng": 4.0}, hlc=(created[0], created[1] + 1)
        )
    )
    rows = await db.fetch("SELECT lat, lng FROM accounts WHERE id = {}", account)
    assert (rows[0]["lat"], rows[0]["lng"]) == (45.0, 4.0)
