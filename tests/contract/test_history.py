"""History (SPEC section 11) on SQLite and PostgreSQL: every path that applies a change
leaves its entry, in the transaction that applied it, with each field's old and new value;
a write that lost every field leaves none; a deleted record's history is for admins; and the
hash chains show entries changed or removed outside fieldcrm (server/core/history.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from server import db
from server.core.actor import SYSTEM, Actor
from server.core.history import HEADS, verify
from server.core.writer import Edit, Source, writing
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import login_as


def actor_of(login: Any) -> Actor:
    return Actor(login.user_id, login.username, login.role, login.team_id)


async def history(client: Any, who: Any, table: str, record_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/history/{table}/{record_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["entries"]  # type: ignore[no-any-return]


@pytest.fixture
async def rep(client: Any) -> tuple[Any, Device]:
    login = await login_as(client, "rep", "north")
    return login, Device(client, login)


async def test_a_phones_writes_leave_their_entries(client: Any, rep: Any) -> None:
    login, phone = rep
    account = new_id()
    await phone.sync(phone.write("accounts", account, {"name": "Laurent", "phone": "0478"}))
    await phone.pull_all()
    await phone.sync(phone.write("accounts", account, {"phone": "0479", "name": "Laurent"}))
    entries = await history(client, login, "accounts", account)
    assert [e["op"] for e in entries] == ["create", "update"]
    first, second = entries
    assert first["source"] == second["source"] == "sync"
    assert first["client_id"] == phone.client_id and first["user_id"] == login.user_id
    assert first["username"] == login.username
    assert first["fields"]["name"] == {"old": None, "new": "Laurent"}
    assert first["fields"]["phone"] == {"old": None, "new": "0478"}
    assert "created_at" not in first["fields"] and "updated_at" not in first["fields"]
    # Only what changed: the name was written again with the same value.
    assert second["fields"] == {"phone": {"old": "0478", "new": "0479"}}
    assert first["seq"] < second["seq"]
    assert datetime.fromisoformat(second["at"]) >= datetime.fromisoformat(first["at"])


async def test_rest_and_the_servers_jobs_leave_their_entries(client: Any, rep: Any) -> None:
    login, _ = rep
    response = await client.post("/api/tasks", json={"title": "Call"}, headers=login.headers)
    assert response.status_code == 201, response.text
    task = response.json()["id"]
    response = await client.patch(
        f"/api/tasks/{task}", json={"title": "Call back"}, headers=login.headers
    )
    assert response.status_code == 200, response.text
    reminded = datetime(2026, 12, 6, 9, 30, tzinfo=UTC).isoformat()
    async with writing(Source.REMINDER) as writer:
        await writer.apply(SYSTEM, Edit("tasks", task, {"reminded_at": reminded}))
    entries = await history(client, login, "tasks", task)
    assert [(e["source"], e["op"]) for e in entries] == [
        ("rest", "create"),
        ("rest", "update"),
        ("reminder", "update"),
    ]
    assert entries[1]["fields"] == {"title": {"old": "Call", "new": "Call back"}}
    assert entries[1]["client_id"] == "server" and entries[1]["user_id"] == login.user_id
    job = entries[2]
    assert job["client_id"] == "server" and job["user_id"] is None and job["username"] is None
    assert job["fields"]["reminded_at"]["old"] is None
    assert job["fields"]["reminded_at"]["new"].startswith("2026-12-06T09:30:00")


async def test_the_geocoders_writes_are_the_servers(client: Any, rep: Any) -> None:
    login, _ = rep
    account = new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Lyon"}))
    async with writing(Source.GEOCODER) as writer:
        await writer.apply(SYSTEM, Edit("accounts", account, {"lat": 45.764, "lng": 4.8357}))
    entries = await history(client, login, "accounts", account)
    assert [e["source"] for e in entries] == ["rest", "geocoder"]
    assert entries[1]["client_id"] == "server"
    assert entries[1]["fields"]["lat"] == {"old": None, "new": 45.764}


async def test_a_write_that_lost_every_field_leaves_no_entry(client: Any, rep: Any) -> None:
    login, phone = rep
    other = Device(client, login)
    account = new_id()
    await phone.sync(phone.write("accounts", account, {"name": "Kept"}))
    before = await history(client, login, "accounts", account)
    old = (now_ms() - 60_000, 0)  # older than the kept value's clock: it loses
    data = await other.sync(other.write("accounts", account, {"name": "Lost"}, hlc=old))
    assert data["ack"]["results"][0]["status"] == "merged"
    assert await history(client, login, "accounts", account) == before
    conflicts = await db.fetch("SELECT lost_value FROM conflicts WHERE record_id = {}", account)
    assert [c["lost_value"] for c in conflicts] == ['"Lost"']


async def test_a_deleted_records_history_is_for_admins(client: Any, rep: Any) -> None:
    login, phone = rep
    admin = await login_as(client, "admin", "north")
    stranger = await login_as(client, "rep", "south")
    account, visit = new_id(), new_id()
    started = datetime.now(UTC).isoformat()
    await phone.sync(
        phone.write("accounts", account, {"name": "Gone"}),
        phone.write("visits", visit, {"account_id": account, "started_at": started}),
    )
    for who in (stranger,):
        response = await client.get(f"/api/history/accounts/{account}", headers=who.headers)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    await phone.sync(phone.write("accounts", account, op="delete"))
    for table, record_id in (("accounts", account), ("visits", visit)):
        response = await client.get(f"/api/history/{table}/{record_id}", headers=login.headers)
        assert response.status_code == 404, response.text
    visit_entries = await history(client, admin, "visits", visit)
    assert [e["op"] for e in visit_entries] == ["create", "delete"]
    # The visit set the account's last visit: the server's write, made for the rep's.
    entries = await history(client, admin, "accounts", account)
    assert [(e["op"], e["source"]) for e in entries] == [
        ("create", "sync"),
        ("update", "system"),
        ("delete", "sync"),
    ]
    assert list(entries[1]["fields"]) == ["last_visit_at"] and entries[1]["user_id"] is None
    for path in (f"/api/history/nope/{account}", "/api/history/accounts/not-a-uuid"):
        response = await client.get(path, headers=admin.headers)
        assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_an_accounts_move_is_in_its_and_its_childrens_history(client: Any) -> None:
    admin = await login_as(client, "admin", "north")
    south = await login_as(client, "rep", "south")
    account, note = new_id(), new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(admin), Edit("accounts", account, {"name": "Moving"}))
        await writer.apply(
            actor_of(admin), Edit("notes", note, {"account_id": account, "body": "x"})
        )
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(admin), Edit("accounts", account, {"team_id": south.team_id}))
    entries = await history(client, south, "accounts", account)
    assert [e["op"] for e in entries] == ["create", "move"]
    assert entries[1]["fields"]["team_id"]["new"] == south.team_id
    assert [e["op"] for e in await history(client, south, "notes", note)] == ["create", "move"]
    assert await verify() == []


async def _chain(client: Any, phone: Device, account: str) -> list[int]:
    await phone.sync(phone.write("accounts", account, {"name": "One"}))
    for name in ("Two", "Three", "Four"):
        await phone.pull_all()
        await phone.sync(phone.write("accounts", account, {"name": name}))
    rows = await db.fetch("SELECT seq FROM history WHERE record_id = {} ORDER BY seq", account)
    return [int(r["seq"]) for r in rows]


async def test_the_chain_shows_an_entry_changed_outside_fieldcrm(client: Any, rep: Any) -> None:
    _, phone = rep
    account = new_id()
    seqs = await _chain(client, phone, account)
    assert len(seqs) == 4 and await verify() == []
    await db.fetch(
        "UPDATE history SET fields = {} WHERE seq = {}",
        '{"name":{"new":"Deux","old":"One"}}',
        seqs[1],
    )
    problems = [p.line() for p in await verify()]
    assert problems == [f"accounts {account} seq {seqs[1]}: entry changed"]


async def test_the_chain_shows_an_entry_removed_outside_fieldcrm(client: Any, rep: Any) -> None:
    _, phone = rep
    account = new_id()
    seqs = await _chain(client, phone, account)
    await db.fetch("DELETE FROM history WHERE seq = {}", seqs[1])
    problems = [p.line() for p in await verify()]
    assert problems == [f"accounts {account} seq {seqs[2]}: entry before it removed or changed"]
    await db.fetch("DELETE FROM history WHERE seq = {}", seqs[0])
    await db.fetch("DELETE FROM history WHERE seq = {}", seqs[3])
    problems = [p.line() for p in await verify()]
    assert problems == [
        f"accounts {account} seq {seqs[2]}: earlier entry removed",
        f"accounts {account}: newest entries removed",
    ]


async def test_a_chain_goes_on_from_an_entry_another_process_wrote(client: Any, rep: Any) -> None:
    """Each process keeps the newest entry of the records its transactions wrote, and uses
    it only while the record is still at that entry's seq: after a write by another server
    process (here: this process made to believe its head is the one before), the chain goes
    on from the entry the database holds."""
    login, _ = rep
    account = new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", account, {"name": "One"}))
    [first] = await db.fetch("SELECT seq, hash FROM history WHERE record_id = {}", account)
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Two"}))
    epoch = (await db.fetch("SELECT value FROM sync_meta WHERE key = 'epoch'"))[0]["value"]
    HEADS.put(epoch, {account: (int(first["seq"]), first["hash"])})  # stale: one behind
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Three"}))
    rows = await db.fetch(
        "SELECT prev_hash, hash FROM history WHERE record_id = {} ORDER BY seq", account
    )
    assert [r["prev_hash"] for r in rows] == ["", rows[0]["hash"], rows[1]["hash"]]
    assert await verify() == []


async def test_a_rolled_back_write_leaves_the_chain_as_it_was(client: Any, rep: Any) -> None:
    """A transaction that rolls back hands its seqs out again: the entries it made are
    gone, and the next write chains to the entry before them."""
    login, _ = rep
    account = new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", account, {"name": "One"}))
    with pytest.raises(RuntimeError):
        async with writing(Source.REST) as writer:
            await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Gone"}))
            await writer.session.flush()  # its entry is written, then undone
            raise RuntimeError("rolled back")
    async with writing(Source.REST) as writer:
        await writer.apply(actor_of(login), Edit("accounts", account, {"name": "Two"}))
    rows = await db.fetch(
        "SELECT fields, prev_hash, hash FROM history WHERE record_id = {} ORDER BY seq",
        account,
    )
    assert ["Gone" in r["fields"] for r in rows] == [False, False]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert await verify() == []


async def test_an_imported_account_names_the_import(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    response = await client.post(
        "/api/import/accounts",
        content="Company,City\r\nCafé Zoé,Lyon\r\n".encode(),
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    rows = await db.fetch("SELECT id FROM accounts WHERE name = {}", "Café Zoé")
    entries = await history(client, manager, "accounts", str(rows[0]["id"]))
    assert [(e["source"], e["op"], e["user_id"]) for e in entries] == [
        ("import", "create", manager.user_id)
    ]
    assert entries[0]["fields"]["city"] == {"old": None, "new": "Lyon"}
