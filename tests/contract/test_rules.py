"""The sync contract (SPEC section 4), one rule at a time, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import uuid

import msgspec
import pytest
import zstandard

from tests.contract.helpers import Device, mutation, new_id, now_ms
from tests.factories import login_as


@pytest.fixture
async def team(client):
    """Two reps of one team, each with a device, and a rep of another team."""
    alice = await login_as(client, "rep", "north")
    bob = await login_as(client, "rep", "north")
    carol = await login_as(client, "rep", "south")
    return Device(client, alice), Device(client, bob), Device(client, carol)


async def test_create_and_pull_round_trip(team):
    a, b, _ = team
    account = new_id()
    data = await a.sync(a.write("accounts", account, {"name": "Boulangerie Petit", "lat": 45.7}))
    result = data["ack"]["results"][0]
    assert (result["status"], result["replayed"], result["error"]) == ("applied", False, None)
    assert data["ack"]["last_mid"] == 1
    await b.pull_all()
    row = b.row("accounts", account)
    assert row is not None and row["name"] == "Boulangerie Petit" and row["status"] == "prospect"
    assert row["team_id"] == a.login.team_id and row["owner_id"] == a.login.user_id
    assert row["created_at"] and row["updated_at"]


# Rule 1: atomic and durable.
async def test_a_request_that_fails_applies_nothing(team):
    a, b, _ = team
    account = new_id()
    good = a.write("accounts", account, {"name": "Kept out"})
    gap = mutation(3, "accounts", new_id(), {"name": "after a gap"})
    response = await a.raw(
        {"protocol": 1, "client_id": a.client_id, "cursor": None, "mutations": [good, gap]}
    )
    assert response.status_code == 409
    await b.pull_all()
    assert b.row("accounts", account) is None


# Rule 2: exactly once.
async def test_replayed_mutations_are_not_applied_again(team):
    a, b, _ = team
    account = new_id()
    first = a.write("accounts", account, {"name": "Once"})
    data = await a.sync(first)
    original = data["ack"]["results"][0]
    again = await a.sync(first, a.write("accounts", account, {"phone": "+33 1"}))
    replay, fresh = again["ack"]["results"]
    assert replay["replayed"] is True and replay["status"] == original["status"]
    assert replay["hlc"] == original["hlc"]
    assert fresh["replayed"] is False and fresh["status"] == "applied"
    assert again["ack"]["last_mid"] == 2
    await b.pull_all()
    assert [k for k in b.rows if k[0] == "accounts"] == [("accounts", account)]


async def test_a_gap_in_mids_answers_409_with_the_expected_mid(team):
    a, _, _ = team
    a.next_mid = 5
    response = await a.raw(
        {"protocol": 1, "client_id": a.client_id, "cursor": None,
         "mutations": [a.write("accounts", new_id(), {"name": "x"})]}
    )  # fmt: skip
    assert response.status_code == 409
    assert response.json()["error"] == "mid_gap" and response.json()["expected"] == 1


async def test_a_rejected_mutation_consumes_its_mid_and_blocks_nothing(team):
    a, _, _ = team
    bad = a.write("accounts", new_id(), {"name": "x" * 201})
    good_id = new_id()
    good = a.write("accounts", good_id, {"name": "Fine"})
    data = await a.sync(bad, good)
    rejected, applied = data["ack"]["results"]
    assert rejected["status"] == "rejected" and rejected["error"]["error"] == "invalid"
    assert "200" in rejected["error"]["detail"]
    assert applied["status"] == "applied" and data["ack"]["last_mid"] == 2
    again = await a.sync(bad)
    assert (
        again["ack"]["results"][0]["replayed"]
        and again["ack"]["results"][0]["status"] == "rejected"
    )


# Rule 3: the clock clamp.
async def test_a_clock_far_ahead_is_clamped_to_five_minutes(team):
    a, b, _ = team
    account = new_id()
    year_ahead = now_ms() + 365 * 24 * 3600 * 1000
    data = await a.sync(a.write("accounts", account, {"name": "Ahead"}, hlc=(year_ahead, 0)))
    effective = data["ack"]["results"][0]["hlc"]
    assert effective[0] <= data["server_time"] + 300_000
    assert data["hlc_max"] >= effective
    # Six minutes later a normal write beats it.
    later = (data["server_time"] + 360_000, 0)
    await b.pull_all()
    result = await b.sync(b.write("accounts", account, {"name": "Behind"}, hlc=later))
    assert result["ack"]["results"][0]["status"] == "applied"


# Rule 4: per-field last writer wins.
async def test_per_field_last_writer_wins(team):
    a, b, _ = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "Garage Roux"}, hlc=(t, 0)))
    await b.pull_all()
    await a.sync(a.write("accounts", account, {"phone": "A-phone"}, hlc=(t + 2000, 0)))
    data = await b.sync(
        b.write("accounts", account, {"phone": "B-phone", "city": "Lyon"}, hlc=(t + 1000, 0))
    )
    assert data["ack"]["results"][0]["status"] == "merged"
    await b.pull_all()
    row = b.row("accounts", account)
    assert row["phone"] == "A-phone" and row["city"] == "Lyon" and row["name"] == "Garage Roux"


async def test_equal_clocks_are_ordered_by_client_id(team):
    a, b, _ = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "Tie"}, hlc=(t, 0)))
    await b.pull_all()
    await a.sync(a.write("accounts", account, {"phone": "from-a"}, hlc=(t + 10, 3)))
    await b.sync(b.write("accounts", account, {"phone": "from-b"}, hlc=(t + 10, 3)))
    await a.pull_all()
    expected = "from-a" if a.client_id > b.client_id else "from-b"
    assert a.row("accounts", account)["phone"] == expected


# Rule 5: nothing lost silently.
async def test_a_losing_value_is_kept_in_a_conflicts_row(team):
    a, b, c = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "Pharmacie"}, hlc=(t, 0)))
    await b.pull_all()
    await a.sync(a.write("accounts", account, {"phone": "111"}, hlc=(t + 2000, 0)))
    await b.sync(b.write("accounts", account, {"phone": "222"}, hlc=(t + 1000, 0)))
    await a.pull_all()
    conflicts = a.conflicts()
    assert len(conflicts) == 1
    conflict = conflicts[0]
    assert conflict["table"] == "accounts" and conflict["record_id"] == account
    assert conflict["field"] == "phone"
    assert (conflict["kept_value"], conflict["lost_value"]) == ("111", "222")
    assert conflict["kept_by"] == a.login.user_id and conflict["lost_by"] == b.login.user_id
    assert conflict["kept_hlc"] == [t + 2000, 0] and conflict["lost_hlc"] == [t + 1000, 0]
    assert conflict["resolved"] is False
    await c.pull_all()
    assert c.conflicts() == []  # another team does not see it


async def test_overwriting_an_unseen_value_keeps_it(team):
    a, b, _ = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "Cave"}, hlc=(t, 0)))
    await b.pull_all()  # b has seen the row at this seq
    await a.sync(a.write("accounts", account, {"phone": "seen-by-nobody"}, hlc=(t + 1000, 0)))
    data = await b.sync(b.write("accounts", account, {"phone": "b-wins"}, hlc=(t + 2000, 0)))
    assert data["ack"]["results"][0]["status"] == "applied"
    await b.pull_all()
    assert b.row("accounts", account)["phone"] == "b-wins"
    [conflict] = b.conflicts()
    assert (conflict["kept_value"], conflict["lost_value"]) == ("b-wins", "seen-by-nobody")


async def test_overwriting_a_value_one_has_seen_is_no_conflict(team):
    a, b, _ = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "Seen"}, hlc=(t, 0)))
    await a.sync(a.write("accounts", account, {"phone": "1"}, hlc=(t + 1000, 0)))
    await b.pull_all()
    await b.sync(b.write("accounts", account, {"phone": "2"}, hlc=(t + 2000, 0)))
    await b.pull_all()
    assert b.conflicts() == []


async def test_clients_may_only_resolve_conflicts(team):
    a, b, _ = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "X"}, hlc=(t, 0)))
    await b.pull_all()
    await a.sync(a.write("accounts", account, {"phone": "1"}, hlc=(t + 2000, 0)))
    await b.sync(b.write("accounts", account, {"phone": "2"}, hlc=(t + 1000, 0)))
    await b.pull_all()
    [conflict] = b.conflicts()
    data = await b.sync(
        b.write("conflicts", conflict["id"], {"kept_value": "hacked"}),
        b.write("conflicts", conflict["id"], {"resolved": True}),
        b.write("conflicts", new_id(), {"resolved": True}),
    )
    statuses = [r["status"] for r in data["ack"]["results"]]
    assert statuses[:2] == ["rejected", "applied"] and statuses[2] == "rejected"
    await a.pull_all()
    [seen] = a.conflicts()
    assert seen["resolved"] is True and seen["kept_value"] == "1"


# Rule 6: deletes win.
async def test_deletes_are_final_and_later_values_are_kept(team):
    a, b, _ = team
    account = new_id()
    t = now_ms()
    await a.sync(a.write("accounts", account, {"name": "Gone soon"}, hlc=(t, 0)))
    await b.pull_all()
    await a.sync(a.write("accounts", account, op="delete", hlc=(t + 1000, 0)))
    data = await b.sync(b.write("accounts", account, {"phone": "late"}, hlc=(t + 5000, 0)))
    result = data["ack"]["results"][0]
    assert result["status"] == "rejected" and result["error"]["error"] == "deleted"
    changes = data["changes"] + await b.pull_all()
    assert b.row("accounts", account) is None
    assert any(c["op"] == "delete" and c["id"] == account for c in changes)
    [conflict] = b.conflicts()
    assert conflict["record_id"] == account and conflict["lost_value"] == "late"
    assert conflict["lost_by"] == b.login.user_id and conflict["kept_by"] == a.login.user_id


async def test_deleting_an_account_deletes_what_hangs_off_it(team):
    a, b, _ = team
    account, contact = new_id(), new_id()
    await a.sync(
        a.write("accounts", account, {"name": "Parent"}),
        a.write("contacts", contact, {"account_id": account, "name": "Child"}),
    )
    await b.pull_all()
    assert b.row("contacts", contact) is not None
    await a.sync(a.write("accounts", account, op="delete"))
    await b.pull_all()
    assert b.row("contacts", contact) is None and b.row("accounts", account) is None


# Rule 7: the cursor.
async def test_pages_hold_each_row_once_in_its_newest_state_in_seq_order(team):
    a, b, _ = team
    ids = [new_id() for _ in range(7)]
    await a.sync(*[a.write("accounts", i, {"name": f"n{n}"}) for n, i in enumerate(ids)])
    await a.sync(a.write("accounts", ids[0], {"name": "renamed"}))
    seen: list[dict] = []
    pages = 0
    while True:
        data = await b.sync(pull_limit=3)
        seen += data["changes"]
        pages += 1
        if not data["has_more"]:
            break
    accounts = [c for c in seen if c["table"] == "accounts"]
    assert pages >= 3
    assert sorted(c["id"] for c in accounts) == sorted(ids)
    seqs = [c["seq"] for c in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert b.row("accounts", ids[0])["name"] == "renamed"
    again = await b.sync()
    assert again["changes"] == [] and again["has_more"] is False


async def test_pull_only_picks_up_what_changed_since_the_cursor(team):
    a, b, _ = team
    first, second = new_id(), new_id()
    await a.sync(a.write("accounts", first, {"name": "one"}))
    await b.pull_all()
    await a.sync(a.write("accounts", second, {"name": "two"}))
    data = await b.sync()
    assert [c["id"] for c in data["changes"]] == [second]


# Rule 8: scope moves.
async def test_reassigning_an_account_evicts_it_from_the_old_team(client, team):
    a, b, c = team
    admin = await login_as(client, "admin", "hq")  # only an admin moves across teams
    account, contact = new_id(), new_id()
    await a.sync(
        a.write("accounts", account, {"name": "Moving"}),
        a.write("contacts", contact, {"account_id": account, "name": "Along"}),
    )
    await b.pull_all()
    await c.pull_all()
    assert c.row("accounts", account) is None
    response = await client.post(
        f"/api/accounts/{account}/reassign",
        json={"owner_id": c.login.user_id},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    changes = await b.pull_all()
    evicted = {(ch["table"], ch["id"]) for ch in changes if ch["op"] == "evict"}
    assert {("accounts", account), ("contacts", contact)} <= evicted
    assert b.row("accounts", account) is None and b.row("contacts", contact) is None
    await c.pull_all()
    assert c.row("accounts", account)["team_id"] == c.login.team_id
    assert c.row("contacts", contact) is not None


# Rule 9: reset.
@pytest.mark.parametrize("cursor", ["garbage", "1.0000000000000000.5.0.0", "1.x.999999999.0.0"])
async def test_a_cursor_that_cannot_be_honoured_resets(team, cursor):
    a, b, _ = team
    account = new_id()
    await a.sync(a.write("accounts", account, {"name": "Everything again"}))
    b.cursor = cursor
    data = await b.sync()
    assert data["reset"] is True
    assert any(c["id"] == account for c in data["changes"])
    assert (await b.sync())["reset"] is False


async def test_a_reset_pages_the_whole_scope_and_says_so_on_every_page(team):
    a, b, _ = team
    await a.sync(*[a.write("accounts", new_id(), {"name": f"r{i}"}) for i in range(5)])
    b.cursor = "not-a-cursor"
    first = await b.sync(pull_limit=2)
    assert first["reset"] and first["has_more"]
    while True:
        page = await b.sync(pull_limit=2)
        assert page["reset"] is True
        if not page["has_more"]:
            break


# Rule 10: limits and rejection of single mutations.
async def test_limits(team):
    a, _, _ = team
    too_many = [mutation(i + 1, "accounts", new_id(), {"name": "x"}) for i in range(1001)]
    response = await a.raw({"protocol": 1, "client_id": a.client_id, "mutations": too_many})
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    huge = {"protocol": 1, "client_id": a.client_id, "padding": "x" * (4 * 1024 * 1024 + 10)}
    response = await a.raw(huge)
    assert response.status_code == 413
    response = await a.raw({"protocol": 2, "client_id": a.client_id})
    assert response.status_code == 426 and response.json()["error"] == "upgrade_required"
    response = await a.client.post(
        "/api/sync/v1",
        content=b"{nope",
        headers={**a.login.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"] == "malformed"


async def test_bad_mutations_are_rejected_alone(team):
    a, _, c = team
    theirs = new_id()
    await c.sync(c.write("accounts", theirs, {"name": "South only"}))
    good = new_id()
    data = await a.sync(
        a.write("nope", new_id(), {"name": "x"}),
        a.write("accounts", new_id(), {"nickname": "x"}),
        a.write("accounts", new_id(), {"name": 12}),
        a.write("accounts", new_id(), {"name": "x", "lat": 91}),
        a.write("accounts", theirs, {"name": "mine now"}),
        a.write("contacts", new_id(), {"account_id": theirs, "name": "spy"}),
        a.write("accounts", "not-a-uuid", {"name": "x"}),
        a.write("accounts", new_id(), {"team_id": a.login.team_id, "name": "x"}),
        a.write("accounts", new_id(), {"name": "x"}, hlc=(-1, 0)),
        a.write("accounts", new_id(), {"name": "x"}, hlc=(now_ms(), 2**31)),
        a.write("accounts", new_id(), {"name": "x"}, hlc=(2**53, 0)),
        a.write("accounts", new_id(), {"name": "x"}, hlc=(946_684_799_999, 0)),
        a.write("accounts", new_id(), {"name": "x"}, base_seq=10**12),
        a.write("accounts", good, {"name": "still fine"}),
    )
    codes = [r["error"]["error"] if r["error"] else r["status"] for r in data["ack"]["results"]]
    assert codes == [
        "unknown_table", "unknown_field", "invalid", "invalid", "not_found", "not_found",
        "invalid_id", "read_only", "invalid_hlc", "invalid_hlc", "invalid_hlc", "invalid_hlc",
        "invalid_base_seq", "applied",
    ]  # fmt: skip
    assert data["hlc_max"][1] < 2**31  # the refused clocks moved nothing
    await c.pull_all()
    assert c.row("accounts", theirs)["name"] == "South only"


async def test_msgpack_and_compression(team):
    a, _, _ = team
    account = new_id()
    body = {"protocol": 1, "client_id": a.client_id, "cursor": None,
            "mutations": [a.write("accounts", account, {"name": "Packed"})]}  # fmt: skip
    response = await a.client.post(
        "/api/sync/v1",
        content=msgspec.msgpack.encode(body),
        headers={**a.login.headers, "content-type": "application/msgpack",
                 "accept": "application/msgpack"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/msgpack")
    data = msgspec.msgpack.decode(response.content)
    assert data["ack"]["results"][0]["status"] == "applied"
    for i in range(40):
        await a.sync(a.write("accounts", new_id(), {"name": f"Padding account {i}"}))
    response = await a.client.post(
        "/api/sync/v1",
        json={"protocol": 1, "client_id": "fresh-device", "cursor": None},
        headers={**a.login.headers, "accept-encoding": "gzip"},
    )
    assert response.headers.get("content-encoding") == "gzip"
    assert json.loads(response.content)["changes"]  # httpx decoded it


async def test_answers_are_compressed_as_the_client_takes_them(team):
    """zstd when offered (Chromium offers it), else gzip, else nothing; q=0 refuses."""
    a, _, _ = team
    for i in range(40):
        await a.sync(a.write("accounts", new_id(), {"name": f"Padding account {i}"}))
    decode = {
        "zstd": lambda raw: zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 24),
        "gzip": gzip.decompress,
        None: lambda raw: raw,
    }
    pulled = {}
    for offered, expected in [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip", "gzip"),
        ("zstd;q=0, gzip;q=0.5", "gzip"),
        ("identity", None),
        ("", None),
    ]:
        async with a.client.stream(
            "POST",
            "/api/sync/v1",
            json={"protocol": 1, "client_id": str(uuid.uuid4()), "cursor": None},
            headers={**a.login.headers, "accept-encoding": offered},
        ) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == expected, offered
        assert "accept-encoding" in response.headers.get("vary", "").lower()
        body = json.loads(decode[expected](raw))
        pulled[offered] = {c["id"]: c["row"] for c in body["changes"]}
    assert len(set(map(json.dumps, pulled.values()))) == 1  # the same rows every way
    assert len(next(iter(pulled.values()))) >= 40


async def test_rest_writes_reach_devices(client, team):
    a, _, _ = team
    await a.pull_all()
    response = await client.post(
        "/api/accounts", json={"name": "From REST"}, headers=a.login.headers
    )
    assert response.status_code == 201
    account = response.json()["id"]
    await a.pull_all()
    assert a.row("accounts", account)["name"] == "From REST"
    response = await client.patch(
        f"/api/accounts/{account}", json={"phone": "999"}, headers=a.login.headers
    )
    assert response.status_code == 200 and response.json()["phone"] == "999"
    data = await a.sync()
    assert [c["row"]["phone"] for c in data["changes"] if c["id"] == account] == ["999"]


async def test_protocol_needs_a_token(client):
    response = await client.post("/api/sync/v1", json={"protocol": 1, "client_id": "x"})
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


# A cursor a client crafted with our epoch and numbers no database holds is not ours: the
# client starts again from zero (reset), it never reaches the SQL (it was a 500 on SQLite).
@pytest.mark.parametrize("numbers", [("0", str(2**63)), ("1", "1" * 40), (str(2**63), "0")])
async def test_a_crafted_cursor_is_a_reset_not_an_error(team, numbers):
    a, _, _ = team
    await a.sync(a.write("accounts", new_id(), {"name": "Before"}))
    epoch = a.cursor.split(".")[1]
    a.cursor = f"1.{epoch}.{numbers[0]}.{numbers[1]}.0"
    data = await a.sync()
    assert data["reset"] is True
    assert any(change["table"] == "accounts" for change in data["changes"])


# Rule 3 (v1.1): a write that is refused moves no clock, so no one can push everyone's
# clocks to the bounds with writes that are not even applied.
async def test_a_refused_write_moves_no_clock(team):
    a, _, c = team
    theirs = new_id()
    await c.sync(c.write("accounts", theirs, {"name": "South only"}))
    ahead = now_ms() + 300_000
    data = await a.sync(a.write("accounts", theirs, {"name": "x"}, hlc=(ahead, 2**31 - 1)))
    assert data["ack"]["results"][0]["error"]["error"] == "not_found"
    assert data["hlc_max"] < [ahead - 60_000, 0]


# Rule 3 (v1.1): a counter at its bound carries into the next millisecond, so a valid
# write at the bound does not make the next writes invalid.
async def test_a_counter_at_its_bound_carries(team):
    a, b, _ = team
    ahead = now_ms() + 300_000
    account = new_id()
    data = await a.sync(a.write("accounts", account, {"name": "x"}, hlc=(ahead, 2**31 - 1)))
    assert data["ack"]["results"][0]["status"] == "applied"
    assert data["hlc_max"] == [ahead, 2**31 - 1]
    # A REST write ticks the server's clock past it: into the next millisecond.
    response = await b.client.patch(
        f"/api/accounts/{account}", json={"city": "Lyon"}, headers=b.login.headers
    )
    assert response.status_code == 200, response.text
    rows = await b.pull_all()
    assert any(change["id"] == account for change in rows)
    data = await b.sync()
    assert data["hlc_max"] == [ahead + 1, 0]
