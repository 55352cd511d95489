"""Erasure on request and the phones (SPEC section 12), on SQLite and PostgreSQL: every
device that held the record drops it at its next sync (an evict marked `erased`, admins'
devices too); a phone that was offline during the erasure sends its queued writes to it,
they are refused (`erased`), nothing of them is kept, and the record does not come back;
the history's chains still verify, and the erasure's own entry is watched like any."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server import db
from server.core.history import verify
from tests.conftest import Database
from tests.contract.helpers import Device, new_id
from tests.factories import login_as
from tests.support.files import files_holding, marker


async def erase(client: Any, admin: Any, table: str, record_id: str) -> dict[str, Any]:
    response = await client.post(
        "/api/privacy/erase", json={"table": table, "id": record_id}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_phone_offline_during_the_erasure_keeps_nothing_and_gets_nothing_back(
    client: Any, database: Database
) -> None:
    rep = await login_as(client, "rep", "north")
    teammate = await login_as(client, "rep", "north")
    stranger = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    phone, other, outsider, admins = (
        Device(client, rep),
        Device(client, teammate),
        Device(client, stranger),
        Device(client, admin),
    )
    account, contact, visit = new_id(), new_id(), new_id()
    await phone.sync(
        phone.write("accounts", account, {"name": "Laurent SARL"}),
        phone.write("contacts", contact, {"account_id": account, "name": "Anne Laurent"}),
        phone.write(
            "visits",
            visit,
            {"account_id": account, "started_at": datetime.now(UTC).isoformat()},
        ),
    )
    for device in (phone, other, outsider, admins):
        await device.pull_all()
    assert other.row("accounts", account) and admins.row("contacts", contact)

    # The phone goes offline and keeps working on the account.
    mark = marker()
    queued = [
        phone.write("accounts", account, {"phone": f"06 {mark}"}),
        phone.write("contacts", contact, {"email": f"anne.{mark}@example.com"}),
        phone.write("notes", new_id(), {"account_id": account, "body": f"Seen {mark}"}),
        phone.write("visits", visit, op="delete"),
    ]
    answer = await erase(client, admin, "accounts", account)
    assert answer["records"] == 3

    # Everyone who held it drops it: an evict marked erased, for it and what hung off it.
    for device in (other, admins):
        changes = await device.pull_all()
        erased = {(c["table"], c["id"]) for c in changes if c["op"] == "evict" and c["erased"]}
        assert {("accounts", account), ("contacts", contact), ("visits", visit)} <= erased
        assert device.row("accounts", account) is None and device.row("contacts", contact) is None
    assert [c for c in await outsider.pull_all() if c["id"] in (account, contact, visit)] == []

    # Back online: every queued write is refused, kept nowhere, and nothing comes back.
    data = await phone.sync(*queued)
    results = data["ack"]["results"]
    assert [r["status"] for r in results] == ["rejected"] * 4, results
    assert {r["error"]["error"] for r in results} == {"erased"}
    assert not any(mark in r["error"]["detail"] for r in results)
    gone = {c["id"] for c in data["changes"] if c["op"] == "evict" and c.get("erased")}
    assert {account, contact, visit} <= gone
    assert phone.row("accounts", account) is None
    assert await db.fetch("SELECT id FROM rejections") == []
    for table, record_id in (("accounts", account), ("contacts", contact), ("visits", visit)):
        assert await db.fetch(f"SELECT id FROM {table} WHERE id = {{}}", record_id) == []
    assert await db.fetch("SELECT id FROM notes") == []
    assert await files_holding(database, mark) == []
    results_kept = await db.fetch("SELECT result FROM sync_results")
    assert not any(mark in row["result"] for row in results_kept)
    # A replay gets the same answer; a second round changes nothing.
    again = await phone.raw(
        {"protocol": 1, "client_id": phone.client_id, "cursor": None, "mutations": queued}
    )
    replayed = again.json()["ack"]["results"]
    assert all(r["replayed"] and r["error"]["error"] == "erased" for r in replayed)
    assert await db.fetch("SELECT id FROM accounts WHERE id = {}", account) == []
    # A phone that starts from nothing hears nothing of it.
    fresh = Device(client, teammate)
    assert [c for c in await fresh.pull_all() if c["id"] in (account, contact, visit)] == []
    assert await verify() == []


async def test_an_erasure_reaches_the_devices_of_scopes_the_record_left(client: Any) -> None:
    """A device of the team an account moved away from, that has not synced since the
    move, holds the account still: the erasure tells it too."""
    north = await login_as(client, "rep", "north")
    south = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    old_phone = Device(client, north)
    account = new_id()
    await old_phone.sync(old_phone.write("accounts", account, {"name": "Moving"}))
    await old_phone.pull_all()
    response = await client.patch(
        f"/api/accounts/{account}", json={"team_id": south.team_id}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    await erase(client, admin, "accounts", account)
    changes = await old_phone.pull_all()
    assert any(c["id"] == account and c["op"] == "evict" for c in changes)
    assert old_phone.row("accounts", account) is None


async def test_the_erasures_history_entry_is_watched_like_any(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    phone = Device(client, rep)
    account, kept = new_id(), new_id()
    await phone.sync(
        phone.write("accounts", account, {"name": "Gone"}),
        phone.write("accounts", kept, {"name": "Kept"}),
    )
    await phone.pull_all()
    await phone.sync(phone.write("accounts", account, {"name": "Gone again"}))
    await erase(client, admin, "accounts", account)
    assert await verify() == []
    entries = await db.fetch(
        "SELECT seq, prev_hash, hash, op FROM history WHERE record_id = {}", account
    )
    assert [(e["op"], e["prev_hash"]) for e in entries] == [("erase", "")]
    # An old entry put back by hand (from a backup, say) brings values back: it is seen.
    kept_entry = (await db.fetch("SELECT * FROM history WHERE record_id = {}", kept))[0]
    await db.fetch(
        "INSERT INTO history (seq, record_table, record_id, at, user_id, client_id, source,"
        " op, fields, prev_hash, hash) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        1,
        "accounts",
        account,
        kept_entry["at"],
        kept_entry["user_id"],
        kept_entry["client_id"],
        "sync",
        "create",
        '{"name":{"new":"Gone","old":null}}',
        "",
        kept_entry["hash"],
    )
    problems = [p.what for p in await verify()]
    assert "entries before the record's erasure (its values are back)" in problems
    await db.fetch("DELETE FROM history WHERE record_id = {}", account)
    assert [p.what for p in await verify()] == ["erase entry removed"]
