"""REST round trips for every record table, and the fields the server keeps, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server import db
from server.records import services
from tests.factories import (
    CHILD_BODIES,
    child_fields,
    login_as,
    make_account,
    make_child,
    new_id,
)

# A field each child table can be updated on, and a value that `q` finds it by.
UPDATES = {
    "contacts": ("name", "Grace Hopper"),
    "visits": ("summary", "Talked about the Hopper order"),
    "notes": ("body", "Hopper wants a discount"),
    "tasks": ("title", "Send Hopper the quote"),
    "deals": ("title", "Hopper renewal"),
    "attachments": ("caption", "The Hopper shop front"),
}


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0, text
    return value


async def get(client, who, path):
    return await client.get(path, headers=who.headers)


async def test_account_round_trip(client):
    rep = await login_as(client)
    account_id = new_id()
    body = {
        "id": account_id,
        "name": "Boulangerie Dupont",
        "status": "customer",
        "phone": "+33 4 78 00 00 00",
        "email": "contact@dupont.example",
        "website": "https://dupont.example",
        "street": "1 rue de la République",
        "city": "Lyon",
        "region": "Rhône",
        "postal_code": "69001",
        "country": "FR",
        "lat": 45.764,
        "lng": 4.8357,
    }
    response = await client.post("/api/accounts", json=body, headers=rep.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == account_id
    assert {k: created[k] for k in body} == body
    assert created["owner_id"] == rep.user_id
    assert created["team_id"] == rep.team_id
    assert parse_instant(created["created_at"]) == parse_instant(created["updated_at"])

    read = await get(client, rep, f"/api/accounts/{account_id}")
    assert read.status_code == 200, read.text
    assert read.json() == {
        "account": created,
        "contacts": [],
        "visits": [],
        "notes": [],
        "tasks": [],
        "deals": [],
        "attachments": [],
        "truncated": [],
    }

    response = await client.patch(
        f"/api/accounts/{account_id}",
        json={"status": "inactive", "phone": None},
        headers=rep.headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["status"] == "inactive" and updated["phone"] is None
    assert updated["name"] == body["name"]
    assert parse_instant(updated["updated_at"]) > parse_instant(created["updated_at"])
    assert updated["created_at"] == created["created_at"]

    response = await client.delete(f"/api/accounts/{account_id}", headers=rep.headers)
    assert response.status_code == 204, response.text
    assert (await get(client, rep, f"/api/accounts/{account_id}")).status_code == 404
    listed = (await get(client, rep, "/api/accounts")).json()
    assert listed == {"items": [], "next_offset": None}
    again = await client.delete(f"/api/accounts/{account_id}", headers=rep.headers)
    assert again.status_code == 404
    patched = await client.patch(
        f"/api/accounts/{account_id}", json={"name": "Back"}, headers=rep.headers
    )
    assert patched.status_code == 404


async def test_an_id_is_made_when_the_client_sends_none(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    assert str(account["id"]).count("-") == 4


async def test_creating_an_existing_id_answers_409_and_changes_nothing(client):
    rep = await login_as(client)
    account = await make_account(client, rep, name="First")
    response = await client.post(
        "/api/accounts", json={"id": account["id"], "name": "Second"}, headers=rep.headers
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "exists"
    read = await get(client, rep, f"/api/accounts/{account['id']}")
    assert read.json()["account"]["name"] == "First"


async def test_search_matches_the_start_of_words_blind_to_case_and_accents(client):
    """The search box finds records by the start of their words (docs/api.md): each word
    typed starts a word of a searched field, whatever its case and accents; punctuation
    separates words and is never a wildcard."""
    rep = await login_as(client)
    for name, city in [
        ("100% Bio", "Dijon"),
        ("1000 Bio", "Dijon"),
        ("A_B Conseil", "Dijon"),
        ("AxB Conseil", "Dijon"),
        ("Back\\slash", "Dijon"),
        ("Crème Brûlée SARL", "Besançon"),
        ("ÉCOLE MÜLLER", "Saint-Étienne"),
        ("jane@acme.example", "Lyon"),
    ]:
        await make_account(client, rep, name=name, city=city)
    for typed, expected in [
        ("100%25", ["100% Bio", "1000 Bio"]),  # 100 starts both
        ("1000", ["1000 Bio"]),
        ("a_b", ["A_B Conseil"]),  # "a" and "b", each the start of a word
        ("%25", []),  # no word at all: nothing starts with it
        ("k%5C", []),  # no word starts with k
        ("slash", ["Back\\slash"]),
        ("creme brul", ["Crème Brûlée SARL"]),
        ("CRÈME", ["Crème Brûlée SARL"]),
        ("besancon", ["Crème Brûlée SARL"]),
        ("ecole muller", ["ÉCOLE MÜLLER"]),
        ("etienne", ["ÉCOLE MÜLLER"]),  # Saint-Étienne: two words
        ("ecole lyon", []),  # every word must match
        ("bio dijon", ["100% Bio", "1000 Bio"]),  # across the searched fields
        ("acme", ["jane@acme.example"]),
        ("rème", []),  # the middle of a word is not its start
        ("%20%20", None),  # only spaces: no search
    ]:
        items = (await get(client, rep, f"/api/accounts?q={typed}")).json()["items"]
        names = [a["name"] for a in items]
        if expected is None:
            assert len(names) == 8, typed
        else:
            assert names == expected, typed
    too_many = await get(client, rep, "/api/accounts?q=" + "+".join("abcdefghi"))
    assert too_many.status_code == 400 and too_many.json()["error"] == "malformed"


async def test_accounts_list_filters_and_pages(client):
    rep = await login_as(client)
    for index, (city, status) in enumerate(
        [
            ("Lyon", "prospect"),
            ("Paris", "customer"),
            ("lyon", "customer"),
            ("Nice", "prospect"),
            ("Lille", "inactive"),
        ]
    ):
        await make_account(client, rep, name=f"Shop {index}", city=city, status=status)
    await make_account(client, rep, name="Lyonnaise des Eaux", city="Paris")

    found = (await get(client, rep, "/api/accounts?q=LYON")).json()
    assert [a["name"] for a in found["items"]] == ["Lyonnaise des Eaux", "Shop 0", "Shop 2"]
    customers = (await get(client, rep, "/api/accounts?status=customer")).json()
    assert [a["name"] for a in customers["items"]] == ["Shop 1", "Shop 2"]
    both = (await get(client, rep, "/api/accounts?status=customer&q=lyon")).json()
    assert [a["name"] for a in both["items"]] == ["Shop 2"]
    nothing = (await get(client, rep, "/api/accounts?q=nowhere")).json()
    assert nothing == {"items": [], "next_offset": None}

    names, offset, pages = [], 0, 0
    while offset is not None:
        page = (await get(client, rep, f"/api/accounts?limit=4&offset={offset}")).json()
        assert len(page["items"]) <= 4
        names += [a["name"] for a in page["items"]]
        offset, pages = page["next_offset"], pages + 1
    assert pages == 2
    assert names == sorted(names) and len(set(names)) == 6

    exact = (await get(client, rep, "/api/accounts?limit=6")).json()
    assert len(exact["items"]) == 6 and exact["next_offset"] is None
    beyond = (await get(client, rep, "/api/accounts?offset=100")).json()
    assert beyond == {"items": [], "next_offset": None}


@pytest.mark.parametrize("table", list(CHILD_BODIES))
async def test_child_round_trip(client, table):
    rep = await login_as(client)
    account = await make_account(client, rep)
    other_account = await make_account(client, rep)
    record_id = new_id()
    body = {"id": record_id, **child_fields(table, account["id"])}
    response = await client.post(f"/api/{table}", json=body, headers=rep.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == record_id
    assert created["account_id"] == account["id"]

    read = await get(client, rep, f"/api/{table}/{record_id}")
    assert read.status_code == 200, read.text
    assert read.json() == created
    with_children = (await get(client, rep, f"/api/accounts/{account['id']}")).json()
    assert with_children[table] == [created]

    # Two more, one on another account, to list, filter and page.
    await make_child(client, rep, table, account["id"])
    await make_child(client, rep, table, other_account["id"])
    everything = (await get(client, rep, f"/api/{table}")).json()
    assert len(everything["items"]) == 3 and everything["next_offset"] is None
    of_account = (await get(client, rep, f"/api/{table}?account_id={account['id']}")).json()
    assert {r["account_id"] for r in of_account["items"]} == {account["id"]}
    assert len(of_account["items"]) == 2
    first = (await get(client, rep, f"/api/{table}?limit=2")).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    rest = (await get(client, rep, f"/api/{table}?limit=2&offset=2")).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    ids = {r["id"] for r in first["items"] + rest["items"]}
    assert len(ids) == 3

    field, value = UPDATES[table]
    response = await client.patch(
        f"/api/{table}/{record_id}", json={field: value}, headers=rep.headers
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated[field] == value
    assert {k: v for k, v in updated.items() if k not in (field, "updated_at")} == {
        k: v for k, v in created.items() if k not in (field, "updated_at")
    }
    searched = (await get(client, rep, f"/api/{table}?q=hopper")).json()
    assert [r["id"] for r in searched["items"]] == [record_id]

    response = await client.delete(f"/api/{table}/{record_id}", headers=rep.headers)
    assert response.status_code == 204, response.text
    assert (await get(client, rep, f"/api/{table}/{record_id}")).status_code == 404
    remaining = (await get(client, rep, f"/api/{table}")).json()
    assert record_id not in {r["id"] for r in remaining["items"]}
    assert len(remaining["items"]) == 2
    with_children = (await get(client, rep, f"/api/accounts/{account['id']}")).json()
    assert record_id not in {r["id"] for r in with_children[table]}


async def test_deals_filter_by_stage_as_status(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    await make_child(client, rep, "deals", account["id"], stage="won")
    lead = await make_child(client, rep, "deals", account["id"])
    assert lead["stage"] == "lead"
    leads = (await get(client, rep, "/api/deals?status=lead")).json()
    assert [d["id"] for d in leads["items"]] == [lead["id"]]


async def test_deleting_an_account_takes_its_children_with_it(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    children = {t: await make_child(client, rep, t, account["id"]) for t in CHILD_BODIES}
    response = await client.delete(f"/api/accounts/{account['id']}", headers=rep.headers)
    assert response.status_code == 204, response.text
    for table, child in children.items():
        assert (await get(client, rep, f"/api/{table}/{child['id']}")).status_code == 404
        assert (await get(client, rep, f"/api/{table}")).json()["items"] == []
    # A new child cannot hang off the deleted account.
    response = await client.post(
        "/api/contacts", json=child_fields("contacts", account["id"]), headers=rep.headers
    )
    assert response.status_code == 404, response.text


async def test_every_write_is_in_the_change_log_for_devices(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    contact = await make_child(client, rep, "contacts", account["id"])
    rows = await db.fetch("SELECT record_table, record_id, op, scope FROM sync_changes")
    logged = {(r["record_table"], str(r["record_id"])): r for r in rows}
    assert logged[("accounts", account["id"])]["op"] == "put"
    assert logged[("contacts", contact["id"])]["scope"] == f"team:{rep.team_id}"


# -- fields the server keeps -----------------------------------------------------------


async def test_an_account_is_in_its_owners_team(client):
    manager = await login_as(client, "manager", "north")
    admin = await login_as(client, "admin", "hq")
    south_rep = await login_as(client, "rep", "south")
    mine = await make_account(client, manager)
    assert (mine["owner_id"], mine["team_id"]) == (manager.user_id, manager.team_id)
    # Only an admin writes across teams (SPEC section 2, v1.1).
    response = await client.post(
        "/api/accounts",
        json={"name": "Theirs", "owner_id": south_rep.user_id},
        headers=manager.headers,
    )
    assert response.status_code == 403, response.text
    theirs = await make_account(client, admin, owner_id=south_rep.user_id)
    assert (theirs["owner_id"], theirs["team_id"]) == (south_rep.user_id, south_rep.team_id)
    read = await get(client, south_rep, f"/api/accounts/{theirs['id']}")
    assert read.status_code == 200, read.text


async def test_a_manager_may_set_the_team_a_rep_may_not(client):
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    south = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    placed = await make_account(client, manager, team_id=manager.team_id)
    assert placed["team_id"] == manager.team_id and placed["owner_id"] == manager.user_id
    # A manager writes only into their own team; an admin places an account anywhere.
    response = await client.post(
        "/api/accounts", json={"name": "Theirs", "team_id": south.team_id}, headers=manager.headers
    )
    assert response.status_code == 403, response.text
    placed = await make_account(client, admin, team_id=south.team_id)
    assert placed["team_id"] == south.team_id and placed["owner_id"] == admin.user_id
    response = await client.post(
        "/api/accounts", json={"name": "Mine", "team_id": south.team_id}, headers=rep.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "read_only"
    response = await client.post(
        "/api/accounts", json={"name": "Nowhere", "team_id": new_id()}, headers=manager.headers
    )
    assert response.status_code == 404, response.text


SERVER_KEPT = [
    ("visits", "user_id"),
    ("visits", "verification"),
    ("visits", "distance_m"),
    ("notes", "author_id"),
    ("tasks", "author_id"),
    ("tasks", "reminded_at"),
    ("accounts", "geo_precision"),
    ("accounts", "created_by"),
    ("accounts", "last_visit_at"),
    ("tasks", "done_at"),
    ("deals", "stage_changed_at"),
    ("attachments", "author_id"),
    ("attachments", "uploaded"),
]


async def test_server_kept_fields_cannot_be_written(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    visit = await make_child(client, rep, "visits", account["id"])
    value = {
        "user_id": rep.user_id,
        "author_id": rep.user_id,
        "verification": "verified",
        "distance_m": 1.0,
        "reminded_at": "2026-01-01T00:00:00Z",
        "geo_precision": "rooftop",
        "created_by": rep.user_id,
        "last_visit_at": "2026-01-01T00:00:00Z",
        "done_at": "2026-01-01T00:00:00Z",
        "stage_changed_at": "2026-01-01T00:00:00Z",
        "uploaded": True,
    }
    for table, field in SERVER_KEPT:
        body = {"name": "x"} if table == "accounts" else child_fields(table, account["id"])
        body[field] = value[field]
        response = await client.post(f"/api/{table}", json=body, headers=rep.headers)
        assert response.status_code == 422, (table, field, response.text)
        assert response.json()["error"] == "read_only"
    response = await client.patch(
        f"/api/visits/{visit['id']}", json={"verification": "verified"}, headers=rep.headers
    )
    assert response.status_code == 422, response.text


async def test_server_fills_authors_and_assignees(client):
    rep = await login_as(client, "rep", "north")
    teammate = await login_as(client, "rep", "north")
    account = await make_account(client, rep)
    visit = await make_child(client, rep, "visits", account["id"])
    assert visit["user_id"] == rep.user_id
    note = await make_child(client, rep, "notes", account["id"], visit_id=visit["id"])
    assert (note["author_id"], note["visit_id"]) == (rep.user_id, visit["id"])
    task = await make_child(client, rep, "tasks", account["id"])
    assert (task["author_id"], task["assignee_id"], task["done"]) == (rep.user_id,) * 2 + (False,)
    assert task["reminded_at"] is None
    handed = await make_child(client, rep, "tasks", account["id"], assignee_id=teammate.user_id)
    assert (handed["author_id"], handed["assignee_id"]) == (rep.user_id, teammate.user_id)
    deal = await make_child(client, rep, "deals", account["id"])
    assert (deal["owner_id"], deal["stage"]) == (rep.user_id, "lead")
    # A teammate may not edit it; a manager's edit does not change who wrote it.
    response = await client.patch(
        f"/api/notes/{note['id']}", json={"body": "edited"}, headers=teammate.headers
    )
    assert response.status_code == 403, response.text
    manager = await login_as(client, "manager", "north")
    response = await client.patch(
        f"/api/notes/{note['id']}", json={"body": "edited"}, headers=manager.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["author_id"] == rep.user_id


async def test_datetimes_come_back_in_utc(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    visit = await make_child(
        client,
        rep,
        "visits",
        account["id"],
        started_at="2026-05-01T09:30:00+02:00",
        ended_at="2026-05-01T10:00:00-05:00",
    )
    assert parse_instant(visit["started_at"]) == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    assert parse_instant(visit["ended_at"]) == datetime(2026, 5, 1, 15, 0, tzinfo=UTC)
    deal = await make_child(client, rep, "deals", account["id"], close_date="2026-06-30")
    assert deal["close_date"] == "2026-06-30"


# -- visit verification ------------------------------------------------------------------

LYON = (45.7640, 4.8357)


VERIFICATIONS = [
    (LYON, 10.0, "verified"),
    ((45.7660, 4.8357), 50.0, "verified"),  # ~222 m away, but within 200 m + accuracy
    ((45.7660, 4.8357), 5.0, "out_of_range"),
    ((45.8640, 4.8357), 10.0, "out_of_range"),  # ~11 km away
    (LYON, 500.0, "low_accuracy"),
    (LYON, None, "low_accuracy"),
    (None, 10.0, "unverified"),
]


async def test_visit_verification(client):
    rep = await login_as(client)
    account = await make_account(client, rep, lat=LYON[0], lng=LYON[1])
    for position, accuracy, expected in VERIFICATIONS:
        fields = {"accuracy_m": accuracy}
        if position is not None:
            fields.update(lat=position[0], lng=position[1])
        visit = await make_child(client, rep, "visits", account["id"], **fields)
        assert visit["verification"] == expected, (position, accuracy)
        if position is None:
            assert visit["distance_m"] is None
        else:
            assert visit["distance_m"] >= 0
            if position == LYON:
                assert visit["distance_m"] < 1


async def test_visit_to_an_account_without_coordinates_is_unverified(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    visit = await make_child(
        client, rep, "visits", account["id"], lat=LYON[0], lng=LYON[1], accuracy_m=5.0
    )
    assert (visit["verification"], visit["distance_m"]) == ("unverified", None)


async def test_moving_a_visit_verifies_it_again(client):
    rep = await login_as(client)
    account = await make_account(client, rep, lat=LYON[0], lng=LYON[1])
    visit = await make_child(
        client, rep, "visits", account["id"], lat=45.8640, lng=4.8357, accuracy_m=10.0
    )
    assert visit["verification"] == "out_of_range"
    response = await client.patch(
        f"/api/visits/{visit['id']}", json={"lat": LYON[0], "lng": LYON[1]}, headers=rep.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["verification"] == "verified"
    assert response.json()["distance_m"] < 1
    response = await client.patch(
        f"/api/visits/{visit['id']}", json={"accuracy_m": 900.0}, headers=rep.headers
    )
    assert response.json()["verification"] == "low_accuracy"


async def test_patch_and_reassign_never_create(client):
    manager = await login_as(client, "manager")
    for table in ("accounts", *CHILD_BODIES):
        record_id = new_id()
        body = {"name": "x"} if table == "accounts" else child_fields(table, new_id())
        response = await client.patch(
            f"/api/{table}/{record_id}", json=body, headers=manager.headers
        )
        assert response.status_code == 404, response.text
        assert not await db.fetch(f"SELECT id FROM {table} WHERE id = {{}}", record_id)
    response = await client.post(
        f"/api/accounts/{new_id()}/reassign",
        json={"team_id": manager.team_id},
        headers=manager.headers,
    )
    assert response.status_code == 404, response.text
    assert (await get(client, manager, "/api/accounts")).json()["items"] == []


async def test_an_account_always_has_a_team(client):
    manager = await login_as(client, "manager")
    account = await make_account(client, manager)
    for body in ({"team_id": None}, {"team_id": None, "owner_id": None}):
        response = await client.patch(
            f"/api/accounts/{account['id']}", json=body, headers=manager.headers
        )
        assert response.status_code == 422, response.text
    read = await get(client, manager, f"/api/accounts/{account['id']}")
    assert read.json()["account"]["team_id"] == manager.team_id


async def test_conflicts_are_read_and_resolved_but_not_written_otherwise(client):
    rep = await login_as(client)
    account = await make_account(client, rep, name="Kept name")
    # A phone's write with an older clock loses to the REST write: a conflict is kept.
    stale = {"mid": 1, "table": "accounts", "id": account["id"], "op": "upsert",
             "fields": {"name": "Lost name"}, "base_seq": None,
             "hlc": [946_684_800_001, 0]}  # fmt: skip
    body = {"protocol": 1, "client_id": new_id(), "mutations": [stale]}
    response = await client.post("/api/sync/v1", json=body, headers=rep.headers)
    assert response.json()["ack"]["results"][0]["status"] == "merged"

    listed = (await get(client, rep, f"/api/conflicts?account_id={account['id']}")).json()
    assert len(listed["items"]) == 1
    conflict = listed["items"][0]
    assert conflict["table"] == "accounts" and conflict["record_id"] == account["id"]
    assert (conflict["field"], conflict["kept_value"], conflict["lost_value"]) == (
        "name",
        "Kept name",
        "Lost name",
    )
    assert conflict["resolved"] is False and conflict["lost_by"] == rep.user_id
    path = f"/api/conflicts/{conflict['id']}"
    assert (await get(client, rep, path)).json() == conflict

    response = await client.patch(path, json={"resolved": True}, headers=rep.headers)
    assert response.status_code == 200, response.text
    assert response.json()["resolved"] is True
    for body in ({"field": "city"}, {"resolved": "yes"}, {"resolved": None}):
        response = await client.patch(path, json=body, headers=rep.headers)
        assert response.status_code == 422, (body, response.text)
    response = await client.delete(path, headers=rep.headers)
    assert response.status_code == 422, response.text
    assert (await get(client, rep, path)).json()["resolved"] is True


async def test_lists_show_each_record_as_it_is_now(client):
    """Lists read rows from a cache of row versions: an edit, a delete and a move to
    another team show at once, to the team that sees the record and to the one that no
    longer does."""
    rep = await login_as(client, "rep", "north")
    south = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    kept, edited, deleted, moved = [
        await make_account(client, rep, name=f"Lists {n}") for n in range(4)
    ]

    async def names(who):
        items = (await get(client, who, "/api/accounts?q=lists")).json()["items"]
        return sorted(item["name"] for item in items)

    assert await names(rep) == ["Lists 0", "Lists 1", "Lists 2", "Lists 3"]
    response = await client.patch(
        f"/api/accounts/{edited['id']}", json={"name": "Lists 1 edited"}, headers=rep.headers
    )
    assert response.status_code == 200, response.text
    response = await client.delete(f"/api/accounts/{deleted['id']}", headers=rep.headers)
    assert response.status_code in (200, 204), response.text
    response = await client.post(
        f"/api/accounts/{moved['id']}/reassign",
        json={"team_id": south.team_id},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert await names(rep) == ["Lists 0", "Lists 1 edited"]
    assert await names(south) == ["Lists 3"]
    assert kept["name"] == "Lists 0"


async def test_an_account_comes_with_its_children_in_order_and_up_to_date(client):
    rep = await login_as(client)
    account = await make_account(client, rep)
    early = await make_child(
        client, rep, "visits", account["id"], started_at="2026-11-20T09:00:00Z"
    )
    late = await make_child(client, rep, "visits", account["id"], started_at="2026-11-21T09:00:00Z")
    soon = await make_child(client, rep, "tasks", account["id"], due_at="2026-12-01T09:00:00Z")
    later = await make_child(client, rep, "tasks", account["id"], due_at="2026-12-09T09:00:00Z")
    gone = await make_child(client, rep, "notes", account["id"])

    async def read():
        response = await get(client, rep, f"/api/accounts/{account['id']}")
        assert response.status_code == 200, response.text
        return response.json()

    first = await read()
    assert [v["id"] for v in first["visits"]] == [late["id"], early["id"]]
    assert [t["id"] for t in first["tasks"]] == [soon["id"], later["id"]]
    assert [n["id"] for n in first["notes"]] == [gone["id"]]
    response = await client.patch(
        f"/api/visits/{early['id']}", json={"summary": "Signed"}, headers=rep.headers
    )
    assert response.status_code == 200, response.text
    response = await client.delete(f"/api/notes/{gone['id']}", headers=rep.headers)
    assert response.status_code in (200, 204), response.text
    second = await read()
    assert [v["summary"] for v in second["visits"]][1] == "Signed"
    assert second["notes"] == []


async def test_a_listed_row_is_the_row_read_alone(client):
    """Lists splice each row's cached JSON into the answer: it must be what a read of the
    record alone gives, field for field (datetimes, floats, booleans, nulls)."""
    rep = await login_as(client)
    account = await make_account(client, rep, name="Spliced", lat=48.8566, lng=2.3522)
    visit = await make_child(
        client, rep, "visits", account["id"], started_at="2026-11-20T09:00:00Z"
    )
    for _ in range(2):  # read from the table, then from the cache of row versions
        listed = (await get(client, rep, "/api/accounts?q=spliced")).json()["items"]
        alone = (await get(client, rep, f"/api/accounts/{account['id']}")).json()
        assert listed == [alone["account"]]
        visits = (await get(client, rep, f"/api/visits?account_id={account['id']}")).json()
        assert (
            visits["items"]
            == alone["visits"]
            == [(await get(client, rep, f"/api/visits/{visit['id']}")).json()]
        )


async def test_an_accounts_whole_record_is_bounded_and_says_what_it_cut(client, monkeypatch):
    monkeypatch.setattr(services, "CHILDREN_SHOWN", 3)
    rep = await login_as(client)
    account = await make_account(client, rep)
    notes = [
        (await make_child(client, rep, "notes", account["id"], body=f"Note {n}"))["id"]
        for n in range(5)
    ]
    await make_child(client, rep, "contacts", account["id"])
    whole = (await client.get(f"/api/accounts/{account['id']}", headers=rep.headers)).json()
    assert [n["id"] for n in whole["notes"]] == notes[::-1][:3]  # the newest
    assert len(whole["contacts"]) == 1
    assert whole["truncated"] == ["notes"]
