"""Merge and undo (SPEC section 9) and rule 13 over HTTP on both engines: what a merge
moves and writes, its history entries, who may merge what, bad input refused whole, undo
bringing everything back but what was written since, and phones that were offline during
the merge sending their writes to the merged-away records through real sync requests."""

from __future__ import annotations

from typing import Any

from server import db
from server.core.history import verify
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import (
    Login,
    child_fields,
    database_state,
    login_as,
    make_account,
    make_child,
    make_record,
)

CHILDREN = ("contacts", "visits", "notes", "tasks", "deals")


async def merge(client: Any, who: Login, body: dict[str, Any]) -> Any:
    return await client.post("/api/merge", json=body, headers=who.headers)


async def merged(client: Any, who: Login, body: dict[str, Any]) -> dict[str, Any]:
    response = await merge(client, who, body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def undo(client: Any, who: Login, merge_id: str) -> Any:
    return await client.post(f"/api/merge/{merge_id}/undo", headers=who.headers)


class Found:
    """A record read over REST (an account without its children)."""

    def __init__(self, response: Any, table: str) -> None:
        self.status_code = response.status_code
        self._body = response.json()
        self._table = table

    def json(self) -> Any:
        if self._table == "accounts" and self.status_code == 200:
            return self._body["account"]
        return self._body


async def get(client: Any, who: Login, table: str, record_id: str) -> Found:
    return Found(await client.get(f"/api/{table}/{record_id}", headers=who.headers), table)


async def history(client: Any, who: Login, table: str, record_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/history/{table}/{record_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["entries"]  # type: ignore[no-any-return]


async def world(client: Any) -> dict[str, Any]:
    """A manager, a rep of the team, two accounts that are one, each with one of every child,
    a conflict and a refused write about the duplicate."""
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    keep = await make_account(
        client, rep, name="Électricité Laurent", phone=None, city="Lyon", lat=45.764, lng=4.8357
    )
    dup = await make_account(
        client, rep, name="ELECTRICITE LAURENT", phone="04 78 00 00 01", country="FR",
        city="Lyon 3e", lat=45.7641, lng=4.8358,
    )  # fmt: skip
    children = {
        table: (await make_child(client, rep, table, dup["id"]))["id"] for table in CHILDREN
    }
    kept_child = (await make_child(client, rep, "notes", keep["id"], body="On the survivor"))["id"]
    phone = Device(client, rep)
    # A write that loses to the name set above: a conflicts row about the duplicate.
    stale = phone.write("accounts", dup["id"], {"name": "Old"}, hlc=(946_684_800_001, 0))
    # A write the server refuses: a rejections row about the duplicate.
    refused = phone.write("visits", new_id(), {"account_id": dup["id"]})
    data = await phone.sync(stale, refused)
    assert [r["status"] for r in data["ack"]["results"]] == ["merged", "rejected"]
    conflict = (await db.fetch("SELECT id FROM conflicts WHERE record_id = {}", dup["id"]))[0]
    rejection = (await db.fetch("SELECT id FROM rejections WHERE account_id = {}", dup["id"]))[0]
    return {
        "manager": manager,
        "rep": rep,
        "keep": keep,
        "dup": dup,
        "children": children,
        "kept_child": kept_child,
        "conflict": str(conflict["id"]),
        "rejection": str(rejection["id"]),
    }


async def test_a_merge_moves_everything_to_the_survivor_and_undo_brings_it_back(
    client: Any,
) -> None:
    w = await world(client)
    manager, rep, keep, dup = w["manager"], w["rep"], w["keep"], w["dup"]
    answer = await merged(
        client,
        manager,
        {
            "table": "accounts",
            "survivor_id": keep["id"],
            "merged_ids": [dup["id"]],
            "fields": {"phone": dup["id"], "city": keep["id"], "lat": dup["id"]},
        },
    )
    assert answer["survivor_id"] == keep["id"] and answer["merged_ids"] == [dup["id"]]
    assert answer["fields"] == ["lat", "lng", "phone"]
    assert answer["moved"] == {t: 1 for t in (*CHILDREN, "conflicts", "rejections")}

    survivor = (await get(client, manager, "accounts", keep["id"])).json()
    assert survivor["phone"] == "04 78 00 00 01" and survivor["city"] == "Lyon"
    assert (survivor["lat"], survivor["lng"]) == (45.7641, 4.8358)
    assert survivor["name"] == "Électricité Laurent"
    assert (await get(client, manager, "accounts", dup["id"])).status_code == 307
    for table, child_id in w["children"].items():
        row = (await get(client, rep, table, child_id)).json()
        assert row["account_id"] == keep["id"], table
    visit = (await get(client, rep, "visits", w["children"]["visits"])).json()
    assert survivor["last_visit_at"] is not None
    assert visit["verification"] == "unverified"  # as it was: the merge checks nothing again
    for table in ("conflicts", "rejections"):
        rows = await db.fetch(f"SELECT account_id FROM {table} WHERE id = {{}}", w[table[:-1]])
        assert str(rows[0]["account_id"]) == keep["id"], table

    # History: a `merge` entry on each, by the manager, from the merge.
    [entry] = [e for e in await history(client, manager, "accounts", keep["id"])
               if e["op"] == "merge"]  # fmt: skip
    assert entry["source"] == "merge" and entry["user_id"] == manager.user_id
    assert entry["fields"]["merged"] == {"old": None, "new": [dup["id"]]}
    assert entry["fields"]["phone"] == {"old": None, "new": "04 78 00 00 01"}
    admin = await login_as(client, "admin", "hq")
    gone = await history(client, admin, "accounts", dup["id"])
    assert gone[-1]["op"] == "merge" and gone[-1]["source"] == "merge"
    assert gone[-1]["fields"] == {"merged_into": {"old": None, "new": keep["id"]}}
    moved = await history(client, rep, "visits", w["children"]["visits"])
    assert moved[-1]["source"] == "merge"
    assert moved[-1]["fields"]["account_id"] == {"old": dup["id"], "new": keep["id"]}

    # Written since the merge: a field of the survivor, a child moved again, a new child.
    await client.patch(f"/api/accounts/{keep['id']}", json={"lat": 45.0, "lng": 4.0},
                       headers=manager.headers)  # fmt: skip
    await client.patch(f"/api/notes/{w['children']['notes']}", json={"body": "Edited since"},
                       headers=rep.headers)  # fmt: skip
    other = await make_account(client, rep, name="Elsewhere")
    await client.patch(f"/api/tasks/{w['children']['tasks']}", json={"account_id": other["id"]},
                       headers=rep.headers)  # fmt: skip
    since = await make_child(client, rep, "contacts", keep["id"], name="Added since")

    response = await undo(client, manager, answer["merge_id"])
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["restored"] == [dup["id"]]
    assert result["fields"] == ["phone"]  # lat and lng were written since
    assert result["moved_back"] == {"contacts": 1, "conflicts": 1, "deals": 1, "notes": 1,
                                    "rejections": 1, "visits": 1}  # fmt: skip
    assert [k["id"] for k in result["kept"]] == [w["children"]["tasks"], keep["id"], keep["id"]]

    back = (await get(client, manager, "accounts", dup["id"])).json()
    assert {k: back.get(k) for k in ("name", "phone", "city", "lat")} == {
        k: dup.get(k) for k in ("name", "phone", "city", "lat")
    }
    survivor = (await get(client, manager, "accounts", keep["id"])).json()
    assert survivor.get("phone") is None and (survivor["lat"], survivor["lng"]) == (45.0, 4.0)
    for table, child_id in w["children"].items():
        row = (await get(client, rep, table, child_id)).json()
        expected = other["id"] if table == "tasks" else dup["id"]
        assert row["account_id"] == expected, table
    note = (await get(client, rep, "notes", w["children"]["notes"])).json()
    assert note["body"] == "Edited since"  # moved back, with what was written to it
    assert (await get(client, rep, "contacts", since["id"])).json()["account_id"] == keep["id"]
    assert (await get(client, rep, "notes", w["kept_child"])).json()["account_id"] == keep["id"]
    for table in ("conflicts", "rejections"):
        rows = await db.fetch(f"SELECT account_id FROM {table} WHERE id = {{}}", w[table[:-1]])
        assert str(rows[0]["account_id"]) == dup["id"], table
    entries = await history(client, manager, "accounts", dup["id"])
    assert [e["fields"] for e in entries if e["op"] == "merge"] == [
        {"merged_into": {"old": None, "new": keep["id"]}},
        {"merged_into": {"old": keep["id"], "new": None}},
    ]
    last = (await history(client, manager, "accounts", keep["id"]))[-1]
    assert last["op"] == "merge" and last["fields"]["merged"] == {"old": [dup["id"]], "new": None}

    again = await undo(client, manager, answer["merge_id"])
    assert again.status_code == 409 and again.json()["error"] == "undone"
    assert await verify() == []  # every record's hash chain whole, ending at its seq


async def test_a_merge_that_keeps_every_value_still_leaves_its_entry(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    a = await make_account(client, manager, name="Bolt")
    b = await make_account(client, manager, name="Bolt SA")
    answer = await merged(
        client, manager, {"table": "accounts", "survivor_id": a["id"], "merged_ids": [b["id"]]}
    )
    assert answer["fields"] == [] and answer["moved"] == {}
    entries = await history(client, manager, "accounts", a["id"])
    assert [e["op"] for e in entries] == ["create", "merge"]
    assert entries[-1]["fields"] == {"merged": {"old": None, "new": [b["id"]]}}
    seq = (await db.fetch("SELECT seq FROM accounts WHERE id = {}", a["id"]))[0]["seq"]
    assert entries[-1]["seq"] == seq


async def test_contacts_are_merged_by_whoever_sees_them(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    account = await make_account(client, rep, name="Acme")
    other = await make_account(client, rep, name="Acme North")
    ann = await make_record(client, rep, "contacts", **child_fields("contacts", account["id"],
                            name="Ann Lee", email="ann@acme.fr", phone=None))  # fmt: skip
    ann2 = await make_record(client, rep, "contacts", **child_fields("contacts", other["id"],
                             name="A. Lee", email="ann@acme.fr", phone="0600"))  # fmt: skip
    answer = await merged(
        client,
        rep,
        {"table": "contacts", "survivor_id": ann["id"], "merged_ids": [ann2["id"]],
         "fields": {"phone": ann2["id"], "account_id": ann2["id"]}},
    )  # fmt: skip
    assert answer["fields"] == ["account_id", "phone"]
    row = (await get(client, rep, "contacts", ann["id"])).json()
    assert (row["phone"], row["account_id"], row["name"]) == ("0600", other["id"], "Ann Lee")
    assert (await get(client, rep, "contacts", ann2["id"])).status_code == 307
    response = await undo(client, rep, answer["merge_id"])
    assert response.status_code == 200, response.text
    row = (await get(client, rep, "contacts", ann["id"])).json()
    assert (row.get("phone"), row["account_id"]) == (None, account["id"])
    assert (await get(client, rep, "contacts", ann2["id"])).json()["name"] == "A. Lee"


async def test_who_may_merge_what(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    stranger = await login_as(client, "manager", "south")
    admin = await login_as(client, "admin", "hq")
    a = await make_account(client, rep, name="One")
    b = await make_account(client, rep, name="Two")
    south = await make_account(client, stranger, name="Three")
    body = {"table": "accounts", "survivor_id": a["id"], "merged_ids": [b["id"]]}
    before = await database_state()
    response = await merge(client, rep, body)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    response = await merge(client, stranger, body)
    assert response.status_code == 404, response.text  # records they do not see
    assert stranger.user_id not in response.text
    mixed = {**body, "merged_ids": [south["id"]]}
    response = await merge(client, manager, mixed)
    assert response.status_code == 404, response.text
    response = await merge(client, admin, mixed)
    assert response.status_code == 422 and response.json()["error"] == "different_teams"
    assert await database_state() == before
    answer = await merged(client, manager, body)
    for who in (rep, stranger):
        response = await undo(client, who, answer["merge_id"])
        assert response.status_code in (403, 404), response.text
    assert (await undo(client, admin, answer["merge_id"])).status_code == 200


async def test_bad_input_is_refused_whole(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    a = await make_account(client, manager, name="One")
    b = await make_account(client, manager, name="Two")
    c = await make_account(client, manager, name="Three")
    await make_child(client, manager, "visits", c["id"])
    gone = await make_account(client, manager, name="Gone")
    assert (await client.delete(f"/api/accounts/{gone['id']}", headers=manager.headers)).is_success
    ok = {"table": "accounts", "survivor_id": a["id"], "merged_ids": [b["id"]]}
    cases: list[tuple[Any, int, str]] = [
        ({**ok, "table": "visits"}, 422, "invalid"),
        ({**ok, "survivor_id": "nope"}, 422, "invalid"),
        ({**ok, "merged_ids": []}, 422, "invalid"),
        ({**ok, "merged_ids": [b["id"], b["id"]]}, 422, "invalid"),
        ({**ok, "merged_ids": [a["id"]]}, 422, "invalid"),
        ({**ok, "merged_ids": [new_id() for _ in range(21)]}, 422, "invalid"),
        ({**ok, "merged_ids": [c["id"], new_id()]}, 404, "not_found"),
        ({**ok, "survivor_id": new_id()}, 404, "not_found"),
        ({**ok, "merged_ids": [c["id"], gone["id"]]}, 409, "deleted"),
        ({**ok, "fields": {"nickname": b["id"]}}, 422, "invalid"),
        ({**ok, "fields": {"team_id": b["id"]}}, 422, "invalid"),
        ({**ok, "fields": {"phone_e164": b["id"]}}, 422, "invalid"),
        ({**ok, "fields": {"phone": c["id"]}}, 422, "invalid"),
        ({**ok, "fields": {"lat": a["id"], "lng": b["id"]}}, 422, "invalid"),
        ({**ok, "extra": 1}, 400, "malformed"),
        ({"table": "accounts"}, 400, "malformed"),
        ([1, 2], 400, "malformed"),
    ]
    before = await database_state()
    for body, status, error in cases:
        response = await merge(client, manager, body)
        got = (response.status_code, response.json()["error"])
        assert got == (status, error), (body, response.text)
        assert response.json()["detail"]
    assert await database_state() == before
    answer = await merged(client, manager, ok)
    twice = await merge(client, manager, ok)
    assert twice.status_code == 409 and twice.json()["error"] == "merged", twice.text
    assert twice.json()["merge_id"] == answer["merge_id"]
    # A merge into the merged-away record is refused too: it is gone.
    response = await merge(client, manager, {**ok, "survivor_id": b["id"], "merged_ids": [c["id"]]})
    assert response.status_code == 409
    for merge_id in ("nope", new_id()):
        response = await undo(client, manager, merge_id)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    # The survivor merged away since: its merge is undone first.
    later = await merged(
        client, manager, {"table": "accounts", "survivor_id": c["id"], "merged_ids": [a["id"]]}
    )
    before = await database_state()
    response = await undo(client, manager, answer["merge_id"])
    assert response.status_code == 409 and response.json()["error"] == "survivor_gone"
    assert await database_state() == before
    assert (await undo(client, manager, later["merge_id"])).status_code == 200
    assert (await undo(client, manager, answer["merge_id"])).status_code == 200


async def test_a_phone_offline_during_the_merge_lands_its_work_on_the_survivor(
    client: Any,
) -> None:
    """Rule 13 through real sync requests: the phone pulled both accounts, went offline,
    edited the duplicate and logged a visit there; meanwhile a manager merged it away."""
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    keep = await make_account(client, rep, name="Laurent", city="Lyon")
    dup = await make_account(client, rep, name="Laurent SARL", phone="0478")
    phone, other = Device(client, rep), Device(client, manager)
    await phone.pull_all()
    await other.pull_all()
    visit = new_id()
    offline = [
        phone.write("accounts", dup["id"], {"city": "Villeurbanne", "phone": "0479"}),
        phone.write(
            "visits",
            visit,
            {
                "account_id": dup["id"],
                "started_at": "2026-12-01T09:00:00Z",
                "summary": "Met the owner",
            },
        ),  # fmt: skip
        phone.write("contacts", new_id(), {"account_id": dup["id"], "name": "Zoé"}),
    ]
    answer = await merged(
        client,
        manager,
        {"table": "accounts", "survivor_id": keep["id"], "merged_ids": [dup["id"]],
         "fields": {"phone": dup["id"]}},
    )  # fmt: skip
    # Another phone, online, hears of it: the delete names the survivor.
    changes = await other.pull_all()
    deletes = [c for c in changes if c["op"] == "delete"]
    assert deletes == [{"table": "accounts", "id": dup["id"], "seq": deletes[0]["seq"],
                        "op": "delete", "row": None, "merged_into": keep["id"]}]  # fmt: skip
    assert all("merged_into" not in c for c in changes if c["op"] == "put")

    data = await phone.sync(*offline)
    results = data["ack"]["results"]
    # The phone number the merge chose was written after the phone's: it stays, and the
    # phone's is kept in a conflicts row (rule 5), about the survivor.
    assert [r["status"] for r in results] == ["merged", "applied", "applied"], results
    assert results[0]["redirected_to"] == keep["id"]
    assert "redirected_to" not in results[1] and "redirected_to" not in results[2]
    await phone.pull_all()
    survivor = phone.row("accounts", keep["id"])
    assert survivor is not None
    assert (survivor["name"], survivor["city"], survivor["phone"]) == (
        "Laurent",
        "Villeurbanne",
        "0478",
    )
    [conflict] = phone.conflicts()
    assert (conflict["record_id"], conflict["field"]) == (keep["id"], "phone")
    assert (conflict["kept_value"], conflict["lost_value"]) == ("0478", "0479")
    assert phone.row("accounts", dup["id"]) is None
    logged = phone.row("visits", visit)
    assert logged is not None and logged["account_id"] == keep["id"]
    assert survivor["last_visit_at"] is not None
    contacts = [r for (t, _), r in phone.rows.items() if t == "contacts"]
    assert [(c["name"], c["account_id"]) for c in contacts if c] == [("Zoé", keep["id"])]
    # The same mids again (an answer lost): the same results, replayed.
    again = await phone.raw({"protocol": 1, "client_id": phone.client_id, "cursor": phone.cursor,
                             "mutations": offline})  # fmt: skip
    replayed = again.json()["ack"]["results"]
    assert [r["redirected_to"] for r in replayed[:1]] == [keep["id"]]
    assert all(r["replayed"] for r in replayed)

    # Undone: the duplicate comes back to every phone, as it was; what was written since
    # stays on the survivor.
    assert (await undo(client, manager, answer["merge_id"])).status_code == 200
    await phone.pull_all()
    back = phone.row("accounts", dup["id"])
    assert back is not None and (back["phone"], back["city"]) == ("0478", None)
    assert phone.row("accounts", keep["id"])["city"] == "Villeurbanne"  # type: ignore[index]
    assert phone.row("visits", visit)["account_id"] == keep["id"]  # type: ignore[index]
    # A write to it now lands on it again.
    data = await phone.sync(phone.write("accounts", dup["id"], {"city": "Bron"}))
    assert "redirected_to" not in data["ack"]["results"][0]
    assert (await get(client, rep, "accounts", dup["id"])).json()["city"] == "Bron"


async def test_merges_of_merges_redirect_to_the_last_survivor(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    a, b, c = [await make_account(client, manager, name=n) for n in ("A", "B", "C")]
    phone = Device(client, manager)
    await phone.pull_all()
    late = phone.write("accounts", a["id"], {"city": "Lyon"}, hlc=(now_ms(), 0))
    await merged(client, manager, {"table": "accounts", "survivor_id": b["id"],
                                   "merged_ids": [a["id"]]})  # fmt: skip
    await merged(client, manager, {"table": "accounts", "survivor_id": c["id"],
                                   "merged_ids": [b["id"]]})  # fmt: skip
    data = await phone.sync(late)
    assert data["ack"]["results"][0]["redirected_to"] == c["id"]
    assert (await get(client, manager, "accounts", c["id"])).json()["city"] == "Lyon"
    changes = {c_["id"]: c_ for c_ in data["changes"]}
    assert changes[a["id"]]["merged_into"] == b["id"]
    assert changes[b["id"]]["merged_into"] == c["id"]
    # Over REST: the merged-away id leads to the last survivor, and what names it hangs
    # off the survivor.
    response = await client.get(f"/api/accounts/{a['id']}", headers=manager.headers)
    assert response.status_code == 307 and response.json()["merged_into"] == c["id"]
    posted = await make_record(client, manager, "notes", account_id=a["id"], body="Via REST")
    assert posted["account_id"] == c["id"]
    # A delete of a merged-away record is done already: applied, nothing else deleted.
    data = await phone.sync(phone.write("accounts", a["id"], op="delete"))
    assert data["ack"]["results"][0]["status"] == "applied"
    assert (await get(client, manager, "accounts", c["id"])).status_code == 200


async def test_rest_reads_and_writes_of_a_merged_away_id_go_to_its_survivor(
    client: Any,
) -> None:
    """A merged-away id over REST (docs/merge.md): a read is redirected (307) to the
    survivor, naming it; an update lands on the survivor (rule 13, as a phone's write) and
    answers its row; a delete is done already and deletes nothing; once the survivor is
    deleted, or after an undo, the id is a plain deleted or live record again."""
    manager = await login_as(client, "manager", "north")
    outsider = await login_as(client, "manager", "south")
    keep = await make_account(client, manager, name="Garage Martin", city="Lyon")
    dup = await make_account(client, manager, name="GARAGE MARTIN", city=None)
    ann = await make_record(client, manager, "contacts", **child_fields("contacts", keep["id"],
                            name="Ann Lee", email="ann@martin.fr"))  # fmt: skip
    ann2 = await make_record(client, manager, "contacts", **child_fields("contacts", keep["id"],
                             name="A. Lee", email="ann@martin.fr"))  # fmt: skip
    accounts = await merged(client, manager, {"table": "accounts", "survivor_id": keep["id"],
                                              "merged_ids": [dup["id"]]})  # fmt: skip
    await merged(client, manager, {"table": "contacts", "survivor_id": ann["id"],
                                   "merged_ids": [ann2["id"]]})  # fmt: skip

    for table, gone, survivor in (("accounts", dup, keep), ("contacts", ann2, ann)):
        response = await client.get(f"/api/{table}/{gone['id']}", headers=manager.headers)
        assert response.status_code == 307, response.text
        body = response.json()
        assert (body["error"], body["merged_into"]) == ("merged", survivor["id"])
        assert response.headers["location"] == f"/api/{table}/{survivor['id']}"
        followed = await client.get(response.headers["location"], headers=manager.headers)
        assert followed.status_code == 200
        # Someone who does not see it learns nothing.
        response = await client.get(f"/api/{table}/{gone['id']}", headers=outsider.headers)
        assert response.status_code == 404 and "merged_into" not in response.json()

    response = await client.patch(
        f"/api/accounts/{dup['id']}", json={"website": "garage-martin.fr"},
        headers=manager.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["id"] == keep["id"]
    assert response.json()["website"] == "garage-martin.fr"
    assert response.headers["content-location"] == f"/api/accounts/{keep['id']}"
    assert (await get(client, manager, "accounts", keep["id"])).json()["website"] == (
        "garage-martin.fr"
    )
    response = await client.patch(
        f"/api/contacts/{ann2['id']}", json={"title": "CEO"}, headers=manager.headers
    )
    assert response.status_code == 200 and response.json()["id"] == ann["id"]
    response = await client.patch(
        f"/api/accounts/{dup['id']}", json={"website": "x.fr"}, headers=outsider.headers
    )
    assert response.status_code == 404
    # A bad value is refused as on the survivor itself.
    response = await client.patch(
        f"/api/accounts/{dup['id']}", json={"lat": 123}, headers=manager.headers
    )
    assert response.status_code == 422, response.text

    response = await client.delete(f"/api/accounts/{dup['id']}", headers=manager.headers)
    assert response.status_code == 204, response.text
    assert (await get(client, manager, "accounts", keep["id"])).status_code == 200

    # Undone: the id is itself again.
    response = await undo(client, manager, accounts["merge_id"])
    assert response.status_code == 200, response.text
    assert (await get(client, manager, "accounts", dup["id"])).status_code == 200

    # A survivor deleted since: the merged-away id is just deleted.
    response = await client.delete(f"/api/contacts/{ann['id']}", headers=manager.headers)
    assert response.status_code == 204, response.text
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"json": {"title": "x"}} if method == "patch" else {}
        response = await getattr(client, method)(
            f"/api/contacts/{ann2['id']}", headers=manager.headers, **kwargs
        )
        assert response.status_code == 404, (method, response.text)
