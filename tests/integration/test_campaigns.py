"""Campaigns (docs/campaigns.md) on both engines: a manager picks the team's accounts by an
area and filters, and fieldcrm plans a visit (a task of kind `visit`) for each account's
owner over the working days of a period, through the one writer (they reach phones); the
campaign's progress follows the visits made. Scoping and bad input."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server import db
from server.settings import Settings
from tests.factories import Login, login_as, make_account, new_id

TZ = "Europe/Paris"
ZONE = ZoneInfo(TZ)
LYON = (45.7640, 4.8357)
# A box around Lyon's centre, and a triangle inside it.
BOX = [[45.70, 4.75], [45.80, 4.90]]
TRIANGLE = [[45.72, 4.78], [45.78, 4.78], [45.72, 4.88]]


@pytest.fixture
def settings(database: Any) -> Settings:
    return Settings(database=database.config, timezone=TZ)


def next_monday() -> date:
    today = datetime.now(ZONE).date()
    return today + timedelta(days=7 - today.weekday())


def period(weeks: int = 1) -> dict[str, str]:
    monday = next_monday()
    return {"from": monday.isoformat(), "to": (monday + timedelta(days=7 * weeks - 1)).isoformat()}


async def post(client: Any, who: Login, body: Any, dry_run: bool = False) -> Any:
    path = "/api/campaigns?dry_run=true" if dry_run else "/api/campaigns"
    return await client.post(path, json=body, headers=who.headers)


async def sync_all(client: Any, who: Login, mutations: list[dict[str, Any]] | None = None) -> Any:
    """Send `mutations` from a new phone and pull everything: {(table, id): row}."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    body: dict[str, Any] = {"protocol": 1, "client_id": new_id(), "cursor": None,
                            "mutations": mutations or []}  # fmt: skip
    while True:
        response = await client.post("/api/sync/v1", json=body, headers=who.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        for result in page["ack"]["results"]:
            assert result["status"] == "applied", result
        for change in page["changes"]:
            if change["op"] == "put":
                rows[(change["table"], change["id"])] = change["row"]
        if not page["has_more"]:
            return rows
        body = {**body, "cursor": page["cursor"], "mutations": []}


def visit(account_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    ms = int(at.timestamp() * 1000)
    return {"mid": 1, "table": "visits", "id": new_id(), "op": "upsert", "base_seq": None,
            "hlc": [ms, 0], "fields": {"account_id": account_id, "started_at": at.isoformat(),
                                       **fields}}  # fmt: skip


async def town(client: Any) -> dict[str, Any]:
    """Team north: a manager, two reps and an inactive one; accounts around Lyon (inside
    the box, some inside the triangle), one far away, one without a position."""
    manager = await login_as(client, "manager", "north")
    alice = await login_as(client, "rep", "north")
    bob = await login_as(client, "rep", "north")
    gone = await login_as(client, "rep", "north")
    accounts: dict[str, dict[str, Any]] = {}
    spots = {
        # name: (owner, lat, lng, status, city)
        "Bakery Martin": (alice, 45.74, 4.80, "prospect", "Lyon"),  # triangle
        "Cave des Canuts": (alice, 45.73, 4.82, "customer", "LYON "),  # triangle
        "Épicerie Roux": (bob, 45.75, 4.79, "prospect", "Villeurbanne"),  # triangle
        "Halles": (bob, 45.79, 4.89, "prospect", "Lyon"),  # box, not triangle
        "Old shop": (gone, 45.74, 4.81, "prospect", "Lyon"),  # triangle, inactive owner
        "Marseille shop": (alice, 43.30, 5.37, "prospect", "Marseille"),  # far away
        "Nowhere": (alice, None, None, "prospect", "Lyon"),  # no position
    }
    for name, (owner, lat, lng, status, city) in spots.items():
        accounts[name] = await make_account(
            client, owner, name=name, lat=lat, lng=lng, status=status, city=city
        )
    admin = await login_as(client, "admin", "hq")
    response = await client.patch(
        f"/api/users/{gone.user_id}", json={"active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return {"manager": manager, "alice": alice, "bob": bob, "gone": gone, "admin": admin,
            "accounts": accounts}  # fmt: skip


async def test_a_campaign_plans_a_visit_for_each_owner_over_the_working_days(client: Any) -> None:
    world = await town(client)
    manager, alice, bob = world["manager"], world["alice"], world["bob"]
    accounts = world["accounts"]
    body = {"name": "Spring tour", **period(), "area": {"type": "polygon", "points": TRIANGLE}}

    # A dry run says what would happen and writes nothing.
    before = await db.fetch("SELECT COUNT(*) AS n FROM tasks")
    trial = await post(client, manager, body, dry_run=True)
    assert trial.status_code == 200, trial.text
    plan = trial.json()
    assert plan["dry_run"] is True and plan["count"] == 3 and plan["created"] == 3
    assert sorted(a["name"] for a in plan["accounts"]) == [
        "Bakery Martin", "Cave des Canuts", "Épicerie Roux"
    ]  # fmt: skip
    assert [(s["name"], s["reason"]) for s in plan["skipped"]] == [("Old shop", "owner_inactive")]
    assert await db.fetch("SELECT COUNT(*) AS n FROM tasks") == before
    assert await db.fetch("SELECT id FROM campaigns") == []

    made = await post(client, manager, body)
    assert made.status_code == 201, made.text
    answer = made.json()
    campaign = answer["campaign"]
    assert campaign["name"] == "Spring tour" and campaign["from"] == body["from"]
    assert campaign["progress"] == {"accounts": 3, "planned": 3, "done": 0, "visited": 0,
                                    "verified": 0}  # fmt: skip
    assert campaign["skipped"] == 1 and answer["created"] == 3

    # The planned visits reach each owner's phone: tasks of kind visit, theirs, due on a
    # working day of the period at 09:00 (alice has two: one on Monday, one on Wednesday).
    monday = next_monday()
    for rep, names in ((alice, ["Bakery Martin", "Cave des Canuts"]), (bob, ["Épicerie Roux"])):
        rows = await sync_all(client, rep)
        # The team's phones all get them; these are the rep's own.
        tasks = [
            r for (t, _), r in rows.items() if t == "tasks" and r["assignee_id"] == rep.user_id
        ]
        by_account = {r["account_id"]: r for r in tasks}
        assert set(by_account) == {accounts[n]["id"] for n in names}
        for task in tasks:
            assert task["kind"] == "visit" and task["done"] is False
            assert task["title"] == "Visit (Spring tour)" and task["author_id"] == manager.user_id
            due = datetime.fromisoformat(task["due_at"]).astimezone(ZONE)
            assert due.time() == time(9, 0) and due.weekday() < 5
            assert monday <= due.date() <= monday + timedelta(days=4)
        if rep is alice:
            days = sorted(
                datetime.fromisoformat(t["due_at"]).astimezone(ZONE).date() for t in tasks
            )
            assert days == [monday, monday + timedelta(days=2)]
    entries = await db.fetch(
        "SELECT source, user_id FROM history WHERE record_table = {} AND op = {}", "tasks", "create"
    )
    assert {(e["source"], str(e["user_id"])) for e in entries} == {("rest", manager.user_id)}

    # Progress follows the visits: a visit marks its author's planned visit there done; bob's
    # visit without a position counts as visited, not verified; a visit before the campaign
    # was made does not count.
    first = datetime.combine(monday, time(10, 0), tzinfo=ZONE)
    martin = accounts["Bakery Martin"]
    await sync_all(client, alice, [visit(martin["id"], first, lat=45.74, lng=4.80, accuracy_m=10)])
    await sync_all(client, bob, [visit(accounts["Épicerie Roux"]["id"], first)])
    early = first - timedelta(days=10)
    await sync_all(client, alice, [visit(accounts["Cave des Canuts"]["id"], early)])
    detail = (await client.get(f"/api/campaigns/{campaign['id']}", headers=manager.headers)).json()
    assert detail["campaign"]["progress"] == {"accounts": 3, "planned": 3, "done": 2,
                                              "visited": 2, "verified": 1}  # fmt: skip
    rows = {a["name"]: a for a in detail["accounts"]}
    assert rows["Bakery Martin"]["verified"] and rows["Bakery Martin"]["done"]
    assert rows["Épicerie Roux"]["visited_at"] is not None and not rows["Épicerie Roux"]["verified"]
    assert rows["Cave des Canuts"]["visited_at"] is None
    assert rows["Bakery Martin"]["lat"] == 45.74 and rows["Bakery Martin"]["status"] == "prospect"
    assert detail["selection"]["area"] == TRIANGLE and detail["skipped"][0]["name"] == "Old shop"

    # A planned visit deleted by its rep is no longer planned; a deleted account is gone.
    cave = rows["Cave des Canuts"]
    assert (
        await client.delete(f"/api/tasks/{cave['task_id']}", headers=alice.headers)
    ).status_code == 204
    await client.delete(f"/api/accounts/{accounts['Épicerie Roux']['id']}", headers=manager.headers)
    listed = (await client.get("/api/campaigns", headers=manager.headers)).json()
    assert [c["id"] for c in listed["campaigns"]] == [campaign["id"]]
    assert listed["campaigns"][0]["progress"] == {"accounts": 2, "planned": 1, "done": 1,
                                                  "visited": 1, "verified": 1}  # fmt: skip


async def test_filters_and_planned_visits_already_there(client: Any) -> None:
    world = await town(client)
    manager, alice, accounts = world["manager"], world["alice"], world["accounts"]
    dates = period(weeks=2)

    async def chosen(**body: Any) -> list[str]:
        response = await post(client, manager, {**dates, **body}, dry_run=True)
        if response.status_code == 422:
            return []
        assert response.status_code == 200, response.text
        return sorted(a["name"] for a in response.json()["accounts"])

    box = {"type": "rectangle", "points": BOX}
    assert await chosen(area=box) == ["Bakery Martin", "Cave des Canuts", "Halles", "Épicerie Roux"]
    assert await chosen(area={"type": "rectangle", "points": BOX[::-1]}) == await chosen(area=box)
    assert await chosen(filters={"city": "lyon"}) == [
        "Bakery Martin", "Cave des Canuts", "Halles", "Nowhere"
    ]  # fmt: skip
    assert await chosen(filters={"city": "Epicerie"}) == []
    assert await chosen(area=box, filters={"city": "villeurbanne"}) == ["Épicerie Roux"]
    assert await chosen(area=box, filters={"status": ["customer"]}) == ["Cave des Canuts"]
    assert await chosen(filters={"owner_id": alice.user_id, "status": ["prospect"]}) == [
        "Bakery Martin", "Marseille shop", "Nowhere"
    ]  # fmt: skip
    # Not visited in 30 days: a visit last week takes Halles out.
    await sync_all(client, world["bob"], [visit(accounts["Halles"]["id"], datetime.now(UTC))])
    assert await chosen(area=box, filters={"not_visited_days": 30}) == [
        "Bakery Martin", "Cave des Canuts", "Épicerie Roux"
    ]  # fmt: skip

    # A planned visit of the owner already in the period is kept, not doubled.
    due = datetime.combine(next_monday() + timedelta(days=1), time(15, 0), tzinfo=ZONE)
    planned = await client.post(
        "/api/tasks",
        json={"title": "Visit", "kind": "visit", "account_id": accounts["Halles"]["id"],
              "due_at": due.isoformat()},
        headers=world["bob"].headers,
    )  # fmt: skip
    assert planned.status_code == 201
    made = await post(client, manager, {"name": "Box", **dates, "area": box})
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["count"] == 4 and answer["created"] == 3
    halles = next(a for a in answer["accounts"] if a["name"] == "Halles")
    assert halles["task_id"] == planned.json()["id"]
    assert datetime.fromisoformat(halles["due_at"]) == due
    rows = await db.fetch(
        "SELECT COUNT(*) AS n FROM tasks WHERE account_id = {} AND kind = {}",
        accounts["Halles"]["id"],
        "visit",
    )
    assert rows[0]["n"] == 1


async def test_many_accounts_are_spread_evenly_and_near_each_other(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    # 20 accounts along two streets far apart: a day's visits stay on one street.
    for n in range(10):
        await make_account(client, rep, name=f"West {n}", lat=45.75, lng=4.80 + n * 0.001)
        await make_account(client, rep, name=f"East {n}", lat=45.75, lng=4.95 + n * 0.001)
    body = {"name": "Streets", **period(weeks=2), "area": {"type": "rectangle",
            "points": [[45.7, 4.7], [45.8, 5.0]]}}  # fmt: skip
    answer = (await post(client, manager, body)).json()
    assert answer["created"] == 20
    days = Counter(datetime.fromisoformat(a["due_at"]).astimezone(ZONE).date()
                   for a in answer["accounts"])  # fmt: skip
    assert len(days) == 10 and set(days.values()) == {2}  # two a working day

    def day_of(account: dict[str, Any]) -> date:
        return datetime.fromisoformat(account["due_at"]).astimezone(ZONE).date()

    for day in days:
        streets = {a["name"].split()[0] for a in answer["accounts"] if day_of(a) == day}
        assert len(streets) == 1, (day, streets)
        assert day.weekday() < 5
    times = sorted({datetime.fromisoformat(a["due_at"]).astimezone(ZONE).time()
                    for a in answer["accounts"]})  # fmt: skip
    assert times == [time(9, 0), time(13, 0)]


async def test_scoping_managers_their_team_admins_any_reps_none(client: Any) -> None:
    world = await town(client)
    manager, alice, admin = world["manager"], world["alice"], world["admin"]
    south = await login_as(client, "manager", "south")
    body = {"name": "North", **period(), "area": {"type": "rectangle", "points": BOX}}
    made = (await post(client, manager, body)).json()["campaign"]

    for path in ("/api/campaigns", f"/api/campaigns/{made['id']}"):
        refused = await client.get(path, headers=alice.headers)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert (await post(client, alice, body)).status_code == 403
    assert (await post(client, alice, body, dry_run=True)).status_code == 403

    # Team south's manager: nothing of north's, and may not plan for north.
    assert (await client.get("/api/campaigns", headers=south.headers)).json()["campaigns"] == []
    missing = await client.get(f"/api/campaigns/{made['id']}", headers=south.headers)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    north = world["manager"].team_id
    for query in (f"?team_id={north}", ""):
        refused = await client.get(f"/api/campaigns{query}", headers=south.headers)
        assert refused.status_code == (403 if query else 200)
    assert (await post(client, south, {**body, "team_id": north})).status_code == 403
    # In south's own team there is nothing to pick.
    empty = await post(client, south, body)
    assert empty.status_code == 422 and "No account" in empty.json()["detail"]

    # An admin reads and plans for any team.
    listed = await client.get(f"/api/campaigns?team_id={north}", headers=admin.headers)
    assert [c["id"] for c in listed.json()["campaigns"]] == [made["id"]]
    assert (
        await client.get(f"/api/campaigns/{made['id']}", headers=admin.headers)
    ).status_code == 200
    again = await post(client, admin, {**body, "name": "By admin", "team_id": north}, dry_run=True)
    assert again.status_code == 200, again.text
    unknown = await client.get(f"/api/campaigns?team_id={new_id()}", headers=admin.headers)
    assert unknown.status_code == 404


_counter = itertools.count()


async def test_bad_input_answers_a_clear_4xx_and_plans_nothing(client: Any) -> None:
    world = await town(client)
    manager = world["manager"]
    south_rep = await login_as(client, "rep", "south")
    good = {"name": "Tour", **period(), "area": {"type": "rectangle", "points": BOX}}
    today = datetime.now(ZONE).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    cases: list[tuple[Any, int]] = [
        ({**good, "from": "2026-13-01"}, 400),
        ({**good, "from": "tomorrow"}, 400),
        ({**good, "to": ""}, 400),
        ({**good, "from": good["to"], "to": good["from"]}, 400),
        ({**good, "from": (today - timedelta(days=1)).isoformat()}, 422),
        ({**good, "to": (next_monday() + timedelta(days=400)).isoformat()}, 422),
        (
            {
                **good,
                "from": saturday.isoformat(),
                "to": (saturday + timedelta(days=1)).isoformat(),
            },
            422,
        ),
        ({**good, "name": "  "}, 422),
        ({**good, "name": "x" * 201}, 422),
        ({**good, "area": {"type": "polygon", "points": [[45.7, 4.8], [45.8, 4.9]]}}, 422),
        ({**good, "area": {"type": "rectangle", "points": [[45.7, 4.8]]}}, 422),
        ({**good, "area": {"type": "rectangle", "points": [[95, 4.8], [45.8, 4.9]]}}, 422),
        ({**good, "area": {"type": "rectangle", "points": [[45.7, 4.8], [45.7, 4.9]]}}, 422),
        ({**good, "area": {"type": "circle", "points": BOX}}, 400),
        ({**good, "area": {"type": "polygon", "points": [["a", 1]] * 3}}, 400),
        ({**good, "area": {"type": "polygon", "points": [[45.7, 4.8]] * 201}}, 422),
        ({**good, "filters": {"status": ["lost"]}}, 422),
        ({**good, "filters": {"status": []}}, 422),
        ({**good, "filters": {"not_visited_days": 0}}, 422),
        ({**good, "filters": {"owner_id": "alice"}}, 422),
        ({**good, "filters": {"owner_id": south_rep.user_id}}, 422),
        ({**good, "filters": {"colour": "red"}}, 400),
        ({**good, "extra": 1}, 400),
        ({**good, "team_id": "north"}, 400),
        ({**good, "area": {"type": "rectangle", "points": [[10, 10], [11, 11]]}}, 422),
        ([1, 2], 400),
        ("nope", 400),
    ]
    for body, status in cases:
        response = await post(client, manager, body)
        assert response.status_code == status, (body, response.text)
        answer = response.json()
        assert set(answer) >= {"error", "detail"} and answer["detail"], answer
    bad_flag = await client.post("/api/campaigns?dry_run=maybe", json=good, headers=manager.headers)
    assert bad_flag.status_code == 400
    raw = await client.post(
        "/api/campaigns", content=b"{not json", headers={**manager.headers,
                                                         "Content-Type": "application/json"}
    )  # fmt: skip
    assert raw.status_code == 400
    for path in ("/api/campaigns/not-a-uuid", f"/api/campaigns/{new_id()}"):
        response = await client.get(path, headers=manager.headers)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert (
        await client.get("/api/campaigns?team_id=x", headers=manager.headers)
    ).status_code == 400
    assert await db.fetch("SELECT id FROM campaigns") == []
    assert await db.fetch("SELECT id FROM tasks") == []
