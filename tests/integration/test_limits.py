"""The write limits (issue 14, docs/limits.md) over HTTP on SQLite and PostgreSQL: a user
over their write rate gets 429 with Retry-After, a team over its storage quota 413; either
way nothing of the request is applied and its mids are not consumed, so the phone sends
the very same writes again later and they apply exactly once. Deletes and edits pass a
full quota; REST writes count the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from server import db
from server.core import limits
from server.settings import Settings
from tests.conftest import Database
from tests.contract.helpers import Device, new_id
from tests.factories import database_state, login_as

RATE_PER_MIN = 60  # one write a second
BURST = 5
QUOTA = 12


@pytest.fixture
def settings(database: Database) -> Settings:
    return Settings(
        database=database.config,
        write_rate_per_min=RATE_PER_MIN,
        write_burst=BURST,
        team_quota_records=QUOTA,
    )


@pytest.fixture(autouse=True)
def default_limits_after(database: Database) -> Iterator[None]:
    """The process's limits are the app's: back to the defaults for the tests after."""
    yield
    limits.configure(Settings(database=database.config))


async def time_passes(login: Any) -> None:
    """The writer's bucket fills up again, as it would after a while."""
    await db.fetch("UPDATE write_budgets SET full_at_us = 0 WHERE user_id = {}", login.user_id)


def body(device: Device, *mutations: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": 1, "client_id": device.client_id, "cursor": None,
            "mutations": list(mutations)}  # fmt: skip


async def last_mid(device: Device) -> int:
    rows = await db.fetch(
        "SELECT last_mid FROM sync_clients WHERE user_id = {} AND client_id = {}",
        device.login.user_id,
        device.client_id,
    )
    return int(rows[0]["last_mid"]) if rows else 0


async def test_over_the_rate_the_request_is_refused_whole_and_sent_again_later(client):
    phone = Device(client, await login_as(client))
    first = [phone.write("accounts", new_id(), {"name": f"Shop {n}"}) for n in range(BURST)]
    assert (await phone.raw(body(phone, *first))).status_code == 200
    before = await database_state()
    more = [phone.write("accounts", new_id(), {"name": f"Late {n}"}) for n in range(2)]
    response = await phone.raw(body(phone, *more))
    assert response.status_code == 429, response.text
    error = response.json()
    assert error["error"] == "rate_limited" and "send the same changes again" in error["detail"]
    # Two writes at one a second: the second token is back in about 2 s.
    assert 1 <= int(response.headers["Retry-After"]) <= 3
    assert error["retry_after_s"] == int(response.headers["Retry-After"])
    assert await database_state() == before  # nothing of it applied
    assert await last_mid(phone) == BURST  # its mids not consumed

    await time_passes(phone.login)
    again = await phone.raw(body(phone, *more))
    assert again.status_code == 200, again.text
    results = again.json()["ack"]["results"]
    assert [(r["mid"], r["status"], r["replayed"]) for r in results] == [
        (BURST + 1, "applied", False),
        (BURST + 2, "applied", False),
    ]
    names = await db.fetch("SELECT name FROM accounts WHERE name LIKE 'Late%' ORDER BY name")
    assert [row["name"] for row in names] == ["Late 0", "Late 1"]


async def test_a_lost_answer_is_replayed_even_over_the_rate(client):
    """Replays cost nothing: a phone that lost an answer gets it again at once."""
    phone = Device(client, await login_as(client))
    sent = [phone.write("accounts", new_id(), {"name": f"Shop {n}"}) for n in range(BURST)]
    assert (await phone.raw(body(phone, *sent))).status_code == 200
    replay = await phone.raw(body(phone, *sent))
    assert replay.status_code == 200
    assert all(r["replayed"] for r in replay.json()["ack"]["results"])
    pulling = await phone.raw(body(phone))  # a pull alone is never limited
    assert pulling.status_code == 200


async def test_a_request_larger_than_the_burst_passes_on_a_full_bucket(client):
    """An outbox after a week offline goes in one request; the writer then waits it off."""
    phone = Device(client, await login_as(client))
    big = [phone.write("accounts", new_id(), {"name": f"Shop {n}"}) for n in range(2 * BURST)]
    assert (await phone.raw(body(phone, *big))).status_code == 200
    response = await phone.raw(body(phone, phone.write("accounts", new_id(), {"name": "x"})))
    assert response.status_code == 429
    # Ten writes at one a second: the bucket is full in 10 s, holds one more in about 6.
    assert 5 <= int(response.headers["Retry-After"]) <= 7


async def test_the_rate_is_per_user_over_all_their_devices_and_the_rest_api(client):
    rep = await login_as(client)
    phone, tablet = Device(client, rep), Device(client, rep)
    colleague = Device(client, await login_as(client))
    writes = [phone.write("accounts", new_id(), {"name": f"Shop {n}"}) for n in range(BURST - 1)]
    assert (await phone.raw(body(phone, *writes))).status_code == 200
    one = await client.post("/api/accounts", json={"name": "By REST"}, headers=rep.headers)
    assert one.status_code == 201, one.text
    refused = await tablet.raw(body(tablet, tablet.write("accounts", new_id(), {"name": "T"})))
    assert refused.status_code == 429
    rest = await client.post("/api/accounts", json={"name": "Too many"}, headers=rep.headers)
    assert rest.status_code == 429 and rest.json()["error"] == "rate_limited"
    assert "Retry-After" in rest.headers
    assert not await db.fetch("SELECT id FROM accounts WHERE name = 'Too many'")
    # Someone else writes as usual.
    theirs = colleague.write("accounts", new_id(), {"name": "Theirs"})
    assert (await colleague.raw(body(colleague, theirs))).status_code == 200


async def test_requests_that_come_in_together_share_one_budget(client):
    """Two devices of one user at once (one batch, one transaction): one passes."""
    rep = await login_as(client)
    phone, tablet = Device(client, rep), Device(client, rep)
    requests = [
        device.raw(
            body(device, *[device.write("accounts", new_id(), {"name": f"n{n}"}) for n in range(4)])
        )
        for device in (phone, tablet)
    ]
    answers = await asyncio.gather(*requests)
    assert sorted(a.status_code for a in answers) == [200, 429]
    assert len(await db.fetch("SELECT id FROM accounts")) == 4


async def fill_team(client: Any, who: Any) -> tuple[Device, str, list[str]]:
    """QUOTA records in `who`'s team: an account with QUOTA - 1 contacts."""
    phone = Device(client, who)
    account = new_id()
    contacts = [new_id() for _ in range(QUOTA - 1)]
    writes = [phone.write("accounts", account, {"name": "Full"})]
    writes += [phone.write("contacts", c, {"account_id": account, "name": "C"}) for c in contacts]
    for start in range(0, len(writes), BURST):
        await time_passes(who)
        answer = await phone.raw(body(phone, *writes[start : start + BURST]))
        assert answer.status_code == 200, answer.text
    return phone, account, contacts


async def test_a_full_team_may_edit_and_delete_but_not_create(client):
    rep = await login_as(client, team="north")
    phone, account, contacts = await fill_team(client, rep)
    await time_passes(rep)
    before = await database_state()
    create = phone.write("notes", new_id(), {"account_id": account, "body": "One more"})
    response = await phone.raw(body(phone, create))
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "quota_exceeded"
    assert f"{QUOTA:,} records" in response.json()["detail"]
    assert await database_state() == before
    assert await last_mid(phone) == QUOTA
    # The whole request is refused: an edit sent with the create is not applied either.
    edit = phone.write("accounts", account, {"city": "Lyon"})
    assert (await phone.raw(body(phone, create, edit))).status_code == 413
    # Alone, edits and deletes pass, and a delete frees space.
    phone.next_mid = create["mid"]
    create = phone.write("notes", create["id"], create["fields"])
    edit = phone.write("accounts", account, {"city": "Lyon"})
    delete = phone.write("contacts", contacts[0], op="delete")
    refused = await phone.raw(body(phone, create, edit, delete))
    assert refused.status_code == 413
    phone.next_mid = create["mid"]
    edit = phone.write("accounts", account, {"city": "Lyon"})
    delete = phone.write("contacts", contacts[0], op="delete")
    answer = await phone.raw(body(phone, edit, delete))
    assert answer.status_code == 200
    create = phone.write("notes", create["id"], create["fields"])
    answer = await phone.raw(body(phone, create))
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["ack"]["results"]] == ["applied"]
    # Another team is not full.
    south = Device(client, await login_as(client, team="south"))
    theirs = south.write("accounts", new_id(), {"name": "South"})
    assert (await south.raw(body(south, theirs))).status_code == 200


async def test_a_full_team_over_rest(client):
    rep = await login_as(client, team="north")
    _, account, contacts = await fill_team(client, rep)
    await time_passes(rep)
    made = await client.post("/api/accounts", json={"name": "No room"}, headers=rep.headers)
    assert made.status_code == 413 and made.json()["error"] == "quota_exceeded"
    assert not await db.fetch("SELECT id FROM accounts WHERE name = 'No room'")
    edited = await client.patch(
        f"/api/accounts/{account}", json={"city": "Lyon"}, headers=rep.headers
    )
    assert edited.status_code == 200, edited.text
    deleted = await client.delete(f"/api/contacts/{contacts[0]}", headers=rep.headers)
    assert deleted.status_code in (200, 204), deleted.text
    made = await client.post("/api/accounts", json={"name": "Room now"}, headers=rep.headers)
    assert made.status_code == 201, made.text


async def test_the_records_counted_are_the_live_records_of_each_scope(client):
    """scope_usage follows creates, deletes (with an account's children) and moves."""
    rep = await login_as(client, team="north")
    admin = await login_as(client, "admin", "hq")
    south = await login_as(client, team="south")
    phone = Device(client, rep)
    kept, moved, gone = new_id(), new_id(), new_id()
    writes = [phone.write("accounts", a, {"name": a[:8]}) for a in (kept, moved, gone)]
    writes += [
        phone.write("contacts", new_id(), {"account_id": a, "name": "C"}) for a in (kept, moved)
    ]
    writes.append(phone.write("tasks", new_id(), {"title": "On no account"}))
    assert (await phone.raw(body(phone, *writes))).status_code == 200
    await time_passes(rep)
    answer = await phone.raw(body(phone, phone.write("accounts", gone, op="delete")))
    assert answer.status_code == 200
    reassigned = await client.post(
        f"/api/accounts/{moved}/reassign",
        json={"owner_id": south.user_id},
        headers=admin.headers,
    )
    assert reassigned.status_code == 200, reassigned.text
    counted = {
        row["scope"]: int(row["records"])
        for row in await db.fetch("SELECT scope, records FROM scope_usage")
        if int(row["records"])
    }
    live: dict[str, int] = {}
    for table in ("accounts", "contacts", "visits", "notes", "tasks", "deals"):
        rows = await db.fetch(
            f"SELECT scope, COUNT(*) AS n FROM {table} WHERE deleted = {{}} GROUP BY scope",
            False,
        )
        for row in rows:
            live[row["scope"]] = live.get(row["scope"], 0) + int(row["n"])
    assert counted == live
    assert counted[f"team:{rep.team_id}"] == 2 and counted[f"team:{south.team_id}"] == 2
    assert counted[f"user:{rep.user_id}"] == 1
