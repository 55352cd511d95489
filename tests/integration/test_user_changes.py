"""Changing a user (`fieldcrm user set`'s service, and PATCH /api/users/{id}) over HTTP on
both engines: deactivating revokes every token and refuses logins, a new password revokes
the tokens, a new role counts at the next request, and a new team reaches the user's
devices as a reset at their next sync that drops the old team's records and brings the
new team's (SPEC sections 1 and 4, rule 9)."""

from __future__ import annotations

from typing import Any

import pytest

from server import db
from server.auth.services import change_user
from server.errors import ApiError
from tests.contract.helpers import Device
from tests.factories import PASSWORD, Login, login_as, make_account, make_child, new_id

NEW_PASSWORD = "a-new-password-7"


async def log_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def me(client: Any, who: Login, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else who.headers
    response = await client.get("/api/me", headers=headers)
    return int(response.status_code)


async def test_deactivating_a_user_revokes_every_token_and_refuses_logins(client):
    rep = await login_as(client)
    second = (await log_in(client, rep.username)).json()["token"]
    assert await me(client, rep) == await me(client, rep, second) == 200

    change = await change_user(rep.username, active=False)
    assert (change.active, change.tokens_revoked) == (False, 2)
    assert await me(client, rep) == await me(client, rep, second) == 401
    assert (await log_in(client, rep.username)).status_code == 401
    live = await db.fetch(
        "SELECT id FROM auth_tokens WHERE user_id = {} AND revoked_at IS NULL", rep.user_id
    )
    assert live == []

    # Active again: they log in anew; the tokens they held stay revoked.
    change = await change_user(rep.username, active=True)
    assert (change.active, change.tokens_revoked) == (True, 0)
    assert await me(client, rep) == await me(client, rep, second) == 401
    assert (await log_in(client, rep.username)).status_code == 200


async def test_an_inactive_users_token_is_refused_even_if_not_revoked(client):
    """actor_for_token checks the user, not only the token."""
    rep = await login_as(client)
    await db.fetch("UPDATE users SET active = {} WHERE id = {}", False, rep.user_id)
    assert await me(client, rep) == 401


async def test_a_new_password_revokes_the_tokens_and_replaces_the_old_one(client):
    rep = await login_as(client)
    change = await change_user(rep.username, password=NEW_PASSWORD)
    assert change.password_set and change.tokens_revoked == 1
    assert await me(client, rep) == 401
    assert (await log_in(client, rep.username)).status_code == 401
    assert (await log_in(client, rep.username, NEW_PASSWORD)).status_code == 200


async def test_a_new_role_counts_at_the_next_request_and_resets_the_devices(client):
    rep = await login_as(client, team="north")
    await login_as(client, team="south")
    teams = await client.get("/api/teams", headers=rep.headers)
    assert len(teams.json()["teams"]) == 1
    phone = Device(client, rep)
    await phone.pull_all()

    change = await change_user(rep.username, role="manager")
    assert (change.user.role, change.rescoped, change.tokens_revoked) == ("manager", True, 0)
    teams = await client.get("/api/teams", headers=rep.headers)
    assert len(teams.json()["teams"]) == 2  # a manager lists every team
    # A manager also sees the refused writes of everyone in the team (SPEC 4 rule 12),
    # older ones included: their devices start again from zero once.
    assert (await phone.sync())["reset"] is True


async def test_unknown_users_and_bad_values_change_nothing(client):
    rep = await login_as(client)
    before = await db.fetch("SELECT * FROM users WHERE id = {}", rep.user_id)
    for kwargs, status, words in [
        ({"role": "manager"}, 404, "no user named 'nobody'"),
        ({"role": "boss"}, 422, "role must be one of"),
        ({"password": "short"}, 422, "at least 8 characters"),
        ({"team": ""}, 422, "team must be 1 to 100 characters"),
        ({"team": "x" * 101}, 422, "team must be 1 to 100 characters"),
    ]:
        username = "nobody" if status == 404 else rep.username
        with pytest.raises(ApiError) as raised:
            await change_user(username, **kwargs)
        assert raised.value.status == status and words in raised.value.detail
    assert await db.fetch("SELECT * FROM users WHERE id = {}", rep.user_id) == before
    assert await me(client, rep) == 200


async def pull_reset(phone: Device, pull_limit: int) -> tuple[list[dict[str, Any]], set[str]]:
    """Sync until has_more is false; what the client keeps once a reset is in (rule 9: it
    drops every row the reset did not send)."""
    pages = []
    while True:
        pages.append(await phone.sync(pull_limit=pull_limit))
        if not pages[-1]["has_more"]:
            break
    if pages[0]["reset"]:
        sent = {(c["table"], c["id"]) for page in pages for c in page["changes"]}
        phone.rows = {key: row for key, row in phone.rows.items() if key in sent}
    return pages, {record_id for (table, record_id) in phone.rows if table == "accounts"}


async def team_change_world(client: Any) -> tuple[Login, dict[str, list[str]]]:
    rep = await login_as(client, team="north")
    south_rep = await login_as(client, team="south")
    accounts: dict[str, list[str]] = {"north": [], "south": []}
    for team, who in (("north", rep), ("south", south_rep), ("south", south_rep)):
        for _ in range(2):
            account = await make_account(client, who)
            await make_child(client, who, "visits", account["id"])
            accounts[team].append(account["id"])
    return rep, accounts


async def test_a_new_team_resets_the_users_devices_at_their_next_sync(client):
    rep, accounts = await team_change_world(client)
    phone, tablet = Device(client, rep), Device(client, rep)
    for device in (phone, tablet):
        _, seen = await pull_reset(device, 500)
        assert seen == set(accounts["north"])

    change = await change_user(rep.username, team="south")
    assert change.rescoped and not change.team_created and change.tokens_revoked == 0
    assert await me(client, rep) == 200  # the token still works

    for device in (phone, tablet):
        # A small page: the reset pages the whole new scope without starting over.
        pages, seen = await pull_reset(device, 3)
        assert len(pages) > 2 and all(page["reset"] for page in pages)
        assert seen == set(accounts["south"])
        visits = {row["account_id"] for (t, _), row in device.rows.items() if t == "visits"}
        assert visits == set(accounts["south"])
        # After the reset, the cursor is honoured as usual.
        after = await device.sync()
        assert (after["reset"], after["changes"]) == (False, [])


async def test_a_new_team_also_resets_a_sync_that_pushes_writes(client):
    rep, accounts = await team_change_world(client)
    phone = Device(client, rep)
    await pull_reset(phone, 500)
    await change_user(rep.username, team="south")
    visit = phone.write(
        "visits",
        new_id(),
        {"account_id": accounts["south"][0], "started_at": "2026-05-01T09:30:00Z"},
    )
    answer = await phone.sync(visit)
    assert answer["reset"] is True
    assert answer["ack"]["results"][0]["status"] == "applied", answer["ack"]


async def test_an_admin_changes_a_user_over_rest(client):
    admin = await login_as(client, "admin", team="hq")
    rep, accounts = await team_change_world(client)
    south = next(
        team["id"]
        for team in (await client.get("/api/teams", headers=admin.headers)).json()["teams"]
        if team["id"] != rep.team_id and team["id"] != admin.team_id
    )
    phone = Device(client, rep)
    await pull_reset(phone, 500)

    response = await client.patch(
        f"/api/users/{rep.user_id}",
        json={"team_id": south, "role": "manager"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": rep.user_id,
        "username": rep.username,
        "role": "manager",
        "team_id": south,
    }
    pages, seen = await pull_reset(phone, 500)
    assert pages[0]["reset"] and seen == set(accounts["south"])

    response = await client.patch(
        f"/api/users/{rep.user_id}", json={"active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert await me(client, rep) == 401


async def test_only_an_admin_changes_users_and_not_to_lock_themselves_out(client):
    admin = await login_as(client, "admin", team="hq")
    manager = await login_as(client, "manager", team="north")
    rep = await login_as(client, team="north")
    path = f"/api/users/{rep.user_id}"
    for who in (rep, manager):
        response = await client.patch(path, json={"role": "admin"}, headers=who.headers)
        assert response.status_code == 403, response.text
    for body in ({"active": False}, {"role": "rep"}):
        response = await client.patch(
            f"/api/users/{admin.user_id}", json=body, headers=admin.headers
        )
        assert response.status_code == 422, response.text
    for target, body, status in [
        (new_id(), {"role": "rep"}, 404),
        ("not-an-id", {"role": "rep"}, 404),
        (rep.user_id, {"team_id": new_id()}, 422),
        (rep.user_id, {"team_id": "north"}, 422),
        (rep.user_id, {"role": "boss"}, 422),
        (rep.user_id, {"password": "short"}, 422),
        (rep.user_id, {"active": "no"}, 400),
        (rep.user_id, {"role": None}, 400),
        (rep.user_id, {"username": "eve"}, 400),
    ]:
        response = await client.patch(f"/api/users/{target}", json=body, headers=admin.headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"] and response.json()["detail"]
    rows = await db.fetch(
        "SELECT role, active, scope_version FROM users WHERE id = {}", rep.user_id
    )
    assert (rows[0]["role"], rows[0]["active"], rows[0]["scope_version"]) == ("rep", True, 0)
