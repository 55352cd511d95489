"""Issue 14: "Keep mine" tells both sides, on SQLite and PostgreSQL. The app sends the
value its user keeps as a write made without having seen the value it replaces
(`base_seq` 0), so the server keeps the colleague's value in a new conflicts row that
names them as the loser (rule 5b): their copy of the story does not disappear."""

from __future__ import annotations

from typing import Any

from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import login_as


def unresolved(device: Device, record_id: str) -> list[dict[str, Any]]:
    return [c for c in device.conflicts() if c["record_id"] == record_id and not c["resolved"]]


async def test_keep_mine_leaves_the_colleague_a_conflict_naming_them(client):
    alice = Device(client, await login_as(client, "rep", "north"))
    bob = Device(client, await login_as(client, "rep", "north"))
    account = new_id()
    early = now_ms() - 60_000
    created = alice.write("accounts", account, {"name": "Café du Port", "phone": "1"})
    await alice.sync({**created, "hlc": [early - 60_000, 0]})
    await alice.pull_all()
    await bob.pull_all()

    # Both edit offline; Bob's edit is the later one and wins, Alice's loses (rule 5a).
    await alice.sync(alice.write("accounts", account, {"phone": "alice"}, hlc=(early, 0)))
    await bob.sync(bob.write("accounts", account, {"phone": "bob"}, hlc=(early + 1000, 0)))
    await alice.pull_all()
    [lost] = unresolved(alice, account)
    assert (lost["lost_value"], lost["lost_by"]) == ("alice", alice.login.user_id)
    assert (lost["kept_value"], lost["kept_by"]) == ("bob", bob.login.user_id)

    # Alice keeps hers, as the app does: the value back with base_seq 0, and the
    # conflict resolved.
    data = await alice.sync(
        alice.write("accounts", account, {"phone": "alice"}, base_seq=0),
        alice.write("conflicts", lost["id"], {"resolved": True}),
    )
    assert [r["status"] for r in data["ack"]["results"]] == ["applied", "applied"]

    # Bob's phone: the account shows Alice's value, and an unresolved conflict says it
    # replaced his, naming Alice.
    await bob.pull_all()
    assert bob.row("accounts", account)["phone"] == "alice"
    assert bob.row("conflicts", lost["id"])["resolved"] is True
    [told] = unresolved(bob, account)
    assert told["field"] == "phone"
    assert (told["kept_value"], told["kept_by"]) == ("alice", alice.login.user_id)
    assert (told["lost_value"], told["lost_by"]) == ("bob", bob.login.user_id)
    assert told["account_id"] == account

    # Alice's phone gets the same row: what she overwrote, and whose it was.
    await alice.pull_all()
    assert [c["id"] for c in unresolved(alice, account)] == [told["id"]]


async def test_keep_mine_as_the_base_seq_of_the_row_would_be_silent(client):
    """Why the app sends base_seq 0: with the row's own seq (which already holds Bob's
    value) the server sees a write made over a value its writer had seen, and keeps no
    conflict for Bob. This is the behaviour the issue reported."""
    alice = Device(client, await login_as(client, "rep", "north"))
    bob = Device(client, await login_as(client, "rep", "north"))
    account = new_id()
    await alice.sync(alice.write("accounts", account, {"name": "Café du Port", "phone": "1"}))
    await bob.pull_all()
    await bob.sync(bob.write("accounts", account, {"phone": "bob"}))
    await alice.pull_all()
    await alice.sync(alice.write("accounts", account, {"phone": "alice"}))  # seen Bob's
    await bob.pull_all()
    assert bob.row("accounts", account)["phone"] == "alice"
    assert unresolved(bob, account) == []
