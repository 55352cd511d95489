"""Rule 11 for a writer who changed team (SPEC 4), on SQLite and PostgreSQL, through sync:
what a rep wrote offline in their old team before they were moved still lands there, keeps
its author, and leaves their devices; what they write there after the move, or send more
than 30 days after it, is refused and kept as a rejection that names the move."""

from __future__ import annotations

import pytest

from server import db
from server.auth.services import change_user
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import login_as

VISIT = {"started_at": "2026-12-01T09:00:00Z", "summary": "Met the buyer; wants prices."}
DAY_MS = 86_400_000


def results(data: dict) -> list[str]:
    return [r["error"]["error"] if r["error"] else r["status"] for r in data["ack"]["results"]]


@pytest.fixture
async def world(client):
    """A rep and their manager in north, a rep and a manager in south, and an account of
    north's that the rep's phone holds."""
    rep = Device(client, await login_as(client, "rep", "north"))
    manager = Device(client, await login_as(client, "manager", "north"))
    south = Device(client, await login_as(client, "rep", "south"))
    south_manager = Device(client, await login_as(client, "manager", "south"))
    account = new_id()
    created = rep.write(
        "accounts", account, {"name": "Quincaillerie Morel"}, hlc=(now_ms() - 120_000, 0)
    )
    await rep.sync(created)
    await rep.pull_all()
    return rep, manager, south, south_manager, account


async def test_work_done_in_the_old_team_before_the_move_lands_there(world):
    rep, manager, south, south_manager, account = world
    visit, note = new_id(), new_id()
    made = now_ms() - 60_000  # a minute before the move
    offline = [
        rep.write("visits", visit, {"account_id": account, **VISIT}, hlc=(made, 0)),
        rep.write("notes", note, {"account_id": account, "visit_id": visit, "body": "Call back"}),
        rep.write("accounts", account, {"phone": "+33 1 23 45 67 89"}, hlc=(made, 2)),
    ]
    offline[1]["hlc"] = [made, 1]
    change = await change_user(rep.login.username, team="south")  # while the rep is offline
    assert change.rescoped
    [move] = await db.fetch("SELECT * FROM team_moves")
    assert (str(move["user_id"]), str(move["from_team"]), str(move["to_team"])) == (
        rep.login.user_id,
        rep.login.team_id,
        south.login.team_id,
    )

    data = await rep.sync(*offline)
    assert results(data) == ["applied", "applied", "applied"], data["ack"]
    assert not await db.fetch("SELECT id FROM rejections")
    # The phone's next pulls are a reset into the new team: nothing of north stays on it.
    changes = data["changes"] + await rep.pull_all()
    assert data["reset"] is True
    sent = {(c["table"], c["id"]) for c in changes if c["op"] == "put"}
    assert not {("accounts", account), ("visits", visit), ("notes", note)} & sent
    # The work is north's, with its author kept; south does not see it.
    await manager.pull_all()
    landed = manager.row("visits", visit)
    assert landed is not None and landed["summary"] == VISIT["summary"]
    assert landed["user_id"] == rep.login.user_id
    assert manager.row("notes", note)["author_id"] == rep.login.user_id
    assert manager.row("accounts", account)["phone"] == "+33 1 23 45 67 89"
    for other in (south, south_manager):
        await other.pull_all()
        assert other.row("visits", visit) is None


async def test_what_the_writer_wrote_out_of_sight_is_evicted_from_their_devices(world):
    """Without a reset in between (a device that synced after the move), the writes that
    landed in the old team leave it as an evict, as for an account that moved."""
    rep, _, _, _, account = world
    visit = new_id()
    offline = rep.write(
        "visits", visit, {"account_id": account, **VISIT}, hlc=(now_ms() - 60_000, 0)
    )
    await change_user(rep.login.username, team="south")
    await rep.pull_all()  # the reset into south
    data = await rep.sync(offline)
    assert results(data) == ["applied"]
    evicted = {(c["table"], c["id"]) for c in data["changes"] if c["op"] == "evict"}
    assert ("visits", visit) in evicted


async def test_a_write_made_after_the_move_is_refused_and_names_it(world):
    rep, manager, _, south_manager, account = world
    await change_user(rep.login.username, team="south")
    late = rep.write("visits", new_id(), {"account_id": account, **VISIT}, hlc=(now_ms() + 5, 0))
    edit = rep.write("accounts", account, {"phone": "+33 9 99"}, hlc=(now_ms() + 6, 0))
    data = await rep.sync(late, edit)
    assert results(data) == ["not_found", "not_found"]
    kept = await db.fetch("SELECT detail, user_id FROM rejections ORDER BY mid")
    assert len(kept) == 2
    assert "You moved to another team" in kept[0]["detail"]
    assert "Quincaillerie Morel" in kept[0]["detail"]
    await manager.pull_all()
    assert manager.row("accounts", account)["phone"] is None


async def test_a_move_older_than_the_grace_voids_the_write(world):
    rep, _, _, _, account = world
    made = now_ms() - 40 * DAY_MS
    stale = rep.write("visits", new_id(), {"account_id": account, **VISIT}, hlc=(made, 0))
    await change_user(rep.login.username, team="south")
    await db.fetch("UPDATE team_moves SET moved_at_ms = {}", made + 1)  # 40 days ago
    data = await rep.sync(stale)
    assert results(data) == ["not_found"]
    # Within the grace it lands.
    await db.fetch("UPDATE team_moves SET moved_at_ms = {}", now_ms() - 29 * DAY_MS)
    stale = rep.write(
        "visits", new_id(), {"account_id": account, **VISIT}, hlc=(now_ms() - 30 * DAY_MS, 0)
    )
    assert results(await rep.sync(stale)) == ["applied"]


async def test_a_write_to_a_team_the_writer_was_never_in_is_refused(world, client):
    """The old team counts, not any team: north's rep moved to south cannot write into an
    account of a third team by claiming an old clock."""
    rep, _, _, _, _ = world
    east = Device(client, await login_as(client, "rep", "east"))
    theirs = new_id()
    await east.sync(east.write("accounts", theirs, {"name": "Not north's"}))
    made = now_ms() - DAY_MS
    await change_user(rep.login.username, team="south")
    data = await rep.sync(
        rep.write("visits", new_id(), {"account_id": theirs, **VISIT}, hlc=(made, 0))
    )
    assert results(data) == ["not_found"]


async def test_back_and_forth_the_team_at_the_writes_clock_counts(world):
    """north -> south -> north: a write made while in south to a south account lands
    (south at its clock); one made while in north before both moves to it too."""
    rep, _, south, _, account = world
    theirs = new_id()
    await south.sync(south.write("accounts", theirs, {"name": "South's"}))
    before = now_ms() - 60_000
    await change_user(rep.login.username, team="south")
    await change_user(rep.login.username, team="north")
    # The moves at known times: to south at before + 10, back at before + 30.
    for from_team, at in ((rep.login.team_id, before + 10), (south.login.team_id, before + 30)):
        await db.fetch("UPDATE team_moves SET moved_at_ms = {} WHERE from_team = {}", at, from_team)
    in_south = before + 20
    data = await rep.sync(
        rep.write("visits", new_id(), {"account_id": theirs, **VISIT}, hlc=(in_south, 0)),
        rep.write("visits", new_id(), {"account_id": account, **VISIT}, hlc=(before, 0)),
        rep.write("visits", new_id(), {"account_id": theirs, **VISIT}, hlc=(before, 1)),
    )
    assert results(data) == ["applied", "applied", "not_found"]
