"""Who may do what (SPEC section 2, v1.1), through sync on SQLite and PostgreSQL: a rep
owns only what they create or claim, fieldwork is changed by its author or a manager,
and only an admin writes across teams."""

from __future__ import annotations

import pytest

from tests.contract.helpers import Device, new_id
from tests.factories import login_as


@pytest.fixture
async def north(client):
    rep = Device(client, await login_as(client, "rep", "north"))
    mate = Device(client, await login_as(client, "rep", "north"))
    manager = Device(client, await login_as(client, "manager", "north"))
    return rep, mate, manager


def outcome(data: dict) -> list[str]:
    return [r["error"]["error"] if r["error"] else r["status"] for r in data["ack"]["results"]]


async def test_a_rep_claims_only_an_account_with_no_owner(north):
    rep, mate, manager = north
    owned, unowned = new_id(), new_id()
    await mate.sync(mate.write("accounts", owned, {"name": "Mate's"}))
    await manager.sync(manager.write("accounts", unowned, {"name": "Nobody's"}))
    await manager.pull_all()
    await manager.sync(manager.write("accounts", unowned, {"owner_id": None}))
    await rep.pull_all()
    data = await rep.sync(
        rep.write("accounts", owned, {"owner_id": rep.login.user_id}),
        rep.write("accounts", unowned, {"owner_id": mate.login.user_id}),
        rep.write("accounts", unowned, {"owner_id": rep.login.user_id}),
        rep.write("accounts", new_id(), {"name": "For a mate", "owner_id": mate.login.user_id}),
    )
    assert outcome(data) == ["forbidden", "forbidden", "applied", "forbidden"]
    await rep.pull_all()
    assert rep.row("accounts", unowned)["owner_id"] == rep.login.user_id
    assert rep.row("accounts", owned)["owner_id"] == mate.login.user_id


async def test_an_account_claimed_in_a_request_is_not_deleted_in_it(north):
    rep, _, manager = north
    claimed, mine = new_id(), new_id()
    await manager.sync(manager.write("accounts", claimed, {"name": "Up for grabs"}))
    await manager.pull_all()
    await manager.sync(manager.write("accounts", claimed, {"owner_id": None}))
    await rep.sync(rep.write("accounts", mine, {"name": "Mine"}))
    await rep.pull_all()
    data = await rep.sync(
        rep.write("accounts", claimed, {"owner_id": rep.login.user_id}),
        rep.write("accounts", claimed, op="delete"),
        rep.write("accounts", mine, op="delete"),
    )
    assert outcome(data) == ["applied", "forbidden", "applied"]
    # In the next request it was theirs before it began.
    data = await rep.sync(rep.write("accounts", claimed, op="delete"))
    assert outcome(data) == ["applied"]


async def test_fieldwork_is_changed_by_its_author_or_a_manager(north):
    rep, mate, manager = north
    account, visit, note = new_id(), new_id(), new_id()
    await rep.sync(
        rep.write("accounts", account, {"name": "Visited"}),
        rep.write("visits", visit, {"account_id": account, "started_at": "2026-12-01T09:00:00Z"}),
        rep.write("notes", note, {"account_id": account, "body": "Met the owner"}),
    )
    await mate.pull_all()
    data = await mate.sync(
        mate.write("visits", visit, {"summary": "Not mine"}),
        mate.write("notes", note, {"body": "Rewritten"}),
        mate.write("notes", note, op="delete"),
        mate.write("visits", visit, op="delete"),
    )
    assert outcome(data) == ["forbidden"] * 4
    await manager.pull_all()
    data = await manager.sync(manager.write("notes", note, {"body": "Corrected"}))
    assert outcome(data) == ["applied"]
    await rep.pull_all()
    assert rep.row("notes", note)["author_id"] == rep.login.user_id  # it keeps its author
    data = await rep.sync(rep.write("visits", visit, {"summary": "Mine to change"}))
    assert outcome(data) == ["applied"]


async def test_a_manager_writes_only_into_their_own_team(client, north):
    _, _, manager = north
    south_rep = await login_as(client, "rep", "south")
    account = new_id()
    data = await manager.sync(
        manager.write("accounts", account, {"name": "North"}),
        manager.write("accounts", new_id(), {"name": "South", "team_id": south_rep.team_id}),
        manager.write("accounts", account, {"owner_id": south_rep.user_id}),
        manager.write("tasks", new_id(), {"title": "South", "assignee_id": south_rep.user_id}),
    )
    assert outcome(data) == ["applied", "forbidden", "forbidden", "forbidden"]
