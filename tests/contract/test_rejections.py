"""Work is not lost at the edges (SPEC 4 rules 11 and 12), on SQLite and PostgreSQL: a
write made before its account moved to another team still lands, and a write the server
refuses is kept whole, seen by its writer and their team's managers, and can be applied
again by a manager."""

from __future__ import annotations

import pytest

from server import db
from server.core.actor import Actor
from server.core.writer import Edit, Source, writing
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import login_as

VISIT = {"started_at": "2026-12-01T09:00:00Z", "summary": "Met the buyer; wants prices."}


@pytest.fixture
async def teams(client):
    """A rep, a teammate and their manager in north; a rep in south; an admin."""
    rep = Device(client, await login_as(client, "rep", "north"))
    mate = Device(client, await login_as(client, "rep", "north"))
    manager = Device(client, await login_as(client, "manager", "north"))
    south = Device(client, await login_as(client, "rep", "south"))
    admin = await login_as(client, "admin", "hq")
    return rep, mate, manager, south, admin


async def move(client, admin, account: str, team_of) -> None:
    response = await client.post(
        f"/api/accounts/{account}/reassign",
        json={"owner_id": team_of.login.user_id},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text


def results(data: dict) -> list[str]:
    return [r["error"]["error"] if r["error"] else r["status"] for r in data["ack"]["results"]]


async def test_a_visit_logged_before_its_account_moved_still_lands(client, teams):
    rep, _, _, south, admin = teams
    account, visit = new_id(), new_id()
    await rep.sync(rep.write("accounts", account, {"name": "Électricité Laurent"}))
    await rep.pull_all()
    offline = rep.write("visits", visit, {"account_id": account, **VISIT}, hlc=(now_ms(), 0))
    await move(client, admin, account, south)  # while the rep is offline
    data = await rep.sync(offline)
    assert results(data) == ["applied"]
    changes = await rep.pull_all()
    assert rep.row("accounts", account) is None  # the account left the rep's team
    evicted = {(c["table"], c["id"]) for c in data["changes"] + changes if c["op"] == "evict"}
    assert ("visits", visit) in evicted  # and the visit the phone made goes with it
    await south.pull_all()
    landed = south.row("visits", visit)
    assert landed is not None and landed["summary"] == VISIT["summary"]
    assert landed["user_id"] == rep.login.user_id
    assert not await db.fetch("SELECT id FROM rejections")


async def test_a_write_made_after_the_move_is_refused_and_kept(client, teams):
    rep, mate, manager, south, admin = teams
    account = new_id()
    await rep.sync(rep.write("accounts", account, {"name": "Boulangerie Petit"}))
    await rep.pull_all()
    await move(client, admin, account, south)
    visit = new_id()
    late = rep.write("visits", visit, {"account_id": account, **VISIT}, hlc=(now_ms() + 1000, 0))
    data = await rep.sync(late)
    assert results(data) == ["not_found"]
    await rep.pull_all()
    [kept] = [row for (table, _), row in rep.rows.items() if table == "rejections"]
    assert (kept["table"], kept["record_id"], kept["op"]) == ("visits", visit, "upsert")
    assert kept["fields"] == late["fields"]  # the whole write, as it was sent
    assert (kept["error"], kept["user_id"], kept["mid"]) == (
        "not_found",
        rep.login.user_id,
        late["mid"],
    )
    assert kept["account_id"] == account
    assert "Boulangerie Petit" in kept["detail"] and "moved to another team" in kept["detail"]
    # Seen by the writer's team's managers, not by a teammate or the other team.
    await manager.pull_all()
    assert manager.row("rejections", kept["id"]) == kept
    for other in (mate, south):
        await other.pull_all()
        assert other.row("rejections", kept["id"]) is None
    response = await client.get(f"/api/rejections/{kept['id']}", headers=mate.login.headers)
    assert response.status_code == 404
    listed = await client.get("/api/rejections", headers=manager.login.headers)
    assert [item["id"] for item in listed.json()["items"]] == [kept["id"]]


async def test_a_manager_applies_a_refused_write_on_another_account(client, teams):
    rep, _, manager, south, admin = teams
    moved, other = new_id(), new_id()
    await rep.sync(
        rep.write("accounts", moved, {"name": "Moved away"}),
        rep.write("accounts", other, {"name": "Still ours"}),
    )
    await rep.pull_all()
    await move(client, admin, moved, south)
    visit = new_id()
    await rep.sync(
        rep.write("visits", visit, {"account_id": moved, **VISIT}, hlc=(now_ms() + 1000, 0))
    )
    [rejection] = await db.fetch("SELECT id FROM rejections")
    rejection_id = str(rejection["id"])
    path = f"/api/rejections/{rejection_id}/apply"
    response = await client.post(path, json={"account_id": other}, headers=rep.login.headers)
    assert response.status_code == 403  # a rep may not
    response = await client.post(path, json={"account_id": other}, headers=manager.login.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "applied"
    assert body["record"]["account_id"] == other and body["record"]["user_id"] == rep.login.user_id
    again = await client.post(path, headers=manager.login.headers)
    assert again.status_code == 409
    await rep.pull_all()
    assert rep.row("visits", visit)["summary"] == VISIT["summary"]
    assert rep.row("rejections", rejection_id)["resolved"] is True


async def test_the_writer_marks_a_rejection_resolved_and_nothing_else(client, teams):
    rep, *_ = teams
    await rep.sync(rep.write("accounts", new_id(), {"nickname": "x"}))
    await rep.pull_all()
    [rejection_id] = [record_id for (table, record_id) in rep.rows if table == "rejections"]
    data = await rep.sync(
        rep.write("rejections", rejection_id, {"error": "fine"}),
        rep.write("rejections", rejection_id, {"resolved": True}),
        rep.write("rejections", rejection_id, op="delete"),
    )
    assert results(data) == ["read_only", "applied", "read_only"]
    await rep.pull_all()
    row = rep.row("rejections", rejection_id)
    assert row["resolved"] is True and row["error"] == "unknown_field"
    # Refusing a write to a rejection keeps no rejection of it.
    assert len(await db.fetch("SELECT id FROM rejections")) == 1


async def test_a_move_older_than_the_grace_voids_the_write(client, teams):
    rep, _, _, south, admin = teams
    account = new_id()
    await rep.sync(rep.write("accounts", account, {"name": "Long gone"}))
    await rep.pull_all()
    written_at = now_ms()
    await move(client, admin, account, south)
    await db.fetch(
        "UPDATE scope_moves SET moved_at_ms = {} WHERE record_id = {}",
        written_at + 1,
        account,
    )
    # The write was made before the move, but the move is 31 days old by now's clock...
    stale = rep.write(
        "visits", new_id(), {"account_id": account, **VISIT}, hlc=(written_at - 31 * 86_400_000, 0)
    )
    await db.fetch(
        "UPDATE scope_moves SET moved_at_ms = {} WHERE record_id = {}",
        written_at - 31 * 86_400_000 + 1,
        account,
    )
    data = await rep.sync(stale)
    assert results(data) == ["not_found"]
    assert len(await db.fetch("SELECT id FROM rejections WHERE error = 'not_found'")) == 1


async def test_a_write_to_a_deleted_account_says_it_was_deleted(client, teams):
    rep, _, manager, *_ = teams
    account = new_id()
    await rep.sync(rep.write("accounts", account, {"name": "Fermé pour toujours"}))
    response = await client.delete(f"/api/accounts/{account}", headers=manager.login.headers)
    assert response.status_code == 204, response.text
    data = await rep.sync(rep.write("visits", new_id(), {"account_id": account, **VISIT}))
    assert results(data) == ["not_found"]
    await rep.pull_all()
    [kept] = [row for (table, _), row in rep.rows.items() if table == "rejections"]
    assert kept["error"] == "not_found" and kept["account_id"] == account
    assert 'The account "Fermé pour toujours" was deleted on ' in kept["detail"]


async def test_a_move_is_at_the_writers_time_and_moves_in_one_millisecond_keep_their_order(
    client, teams
):
    """Rule 11 reads where an account was at a write's clock from its moves in the order
    they were made, even two in the same millisecond (there and back), whatever order the
    database returns rows in; a move made through the one writer at a given server time
    is recorded at that time."""
    rep, _, _, south, admin = teams
    account = new_id()
    await rep.sync(rep.write("accounts", account, {"name": "Aller-retour"}))
    at = now_ms() + 60_000
    admin_actor = Actor(admin.user_id, admin.username, admin.role, admin.team_id)
    for owner in (south.login.user_id, rep.login.user_id):  # to south and back, in one ms
        async with writing(Source.REST, now_ms=at) as writer:
            assert await writer.apply(admin_actor, Edit("accounts", account, {"owner_id": owner}))
    moves = await db.fetch("SELECT * FROM scope_moves WHERE record_id = {} ORDER BY seq", account)
    assert [int(m["moved_at_ms"]) for m in moves] == [at, at]
    # The first move's row, written again, comes last in a scan of the table.
    first = moves[0]
    await db.fetch("DELETE FROM scope_moves WHERE id = {}", first["id"])
    await db.fetch(
        "INSERT INTO scope_moves (id, record_table, record_id, from_scope, to_scope,"
        " moved_at_ms, seq) VALUES ({}, {}, {}, {}, {}, {}, {})",
        *(first[c] for c in ("id", "record_table", "record_id", "from_scope", "to_scope")),
        first["moved_at_ms"],
        first["seq"],
    )
    # Before both moves the account was north's: south's rep could not write to it then.
    data = await south.sync(
        south.write("visits", new_id(), {"account_id": account, **VISIT}, hlc=(at - 1000, 0))
    )
    assert results(data) == ["not_found"]


async def test_a_reassignment_made_before_a_move_by_team_does_not_undo_it(client, teams):
    rep, mate, manager, south, admin = teams
    account = new_id()
    await rep.sync(rep.write("accounts", account, {"name": "X"}, hlc=(now_ms() - 120_000, 0)))
    await manager.pull_all()
    offline = manager.write(
        "accounts", account, {"owner_id": mate.login.user_id}, hlc=(now_ms() - 60_000, 0)
    )
    response = await client.post(
        f"/api/accounts/{account}/reassign",
        json={"team_id": south.login.team_id},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert results(await manager.sync(offline)) == ["applied"]  # rule 11: made before it
    # The later move stands: the account stays in south, with the owner the manager chose.
    [row] = await db.fetch("SELECT team_id, owner_id FROM accounts WHERE id = {}", account)
    assert str(row["team_id"]) == south.login.team_id
    assert str(row["owner_id"]) == mate.login.user_id
