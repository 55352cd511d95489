"""The calendar feed (SPEC section 10) on both engines: what it holds, private mode,
replacing and revoking the link, and who it stops serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from server import db
from tests.factories import Login, login_as

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def create(client: Any, who: Login, table: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/api/{table}", json=fields, headers=who.headers)
    assert response.status_code == 201, response.text
    row: dict[str, Any] = response.json()
    return row


async def make_feed(client: Any, who: Login, private: bool = False) -> str:
    response = await client.post(
        "/api/calendar/feed", json={"private": private}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["private"] is private
    url = str(body["url"])
    assert url.startswith("http") and url.endswith(".ics")
    return url[url.index("/api/") :]


async def read_feed(client: Any, path: str) -> icalendar.Calendar:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(response.content)


def events(calendar: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


async def test_the_feed_holds_my_open_tasks_with_their_alarms(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    mate = await login_as(client, "rep", "north")
    shop = await create(
        client, rep, "accounts", name="Électricité Laurent", street="3 rue Neuve",
        postal_code="69001", city="Lyon", country="FR", lat=45.764, lng=4.8357,
    )  # fmt: skip
    due = NOW + timedelta(days=2)
    remind = due - timedelta(hours=1)
    shown = await create(
        client, rep, "tasks", title="Bring the catalogue", account_id=shop["id"],
        due_at=iso(due), remind_at=iso(remind),
    )  # fmt: skip
    loose = await create(
        client, rep, "tasks", title="Call the office", due_at=iso(NOW - timedelta(days=29))
    )
    left_out = [
        await create(client, rep, "tasks", title="Done", due_at=iso(due), done=True),
        await create(client, rep, "tasks", title="Too old", due_at=iso(NOW - timedelta(days=31))),
        await create(client, rep, "tasks", title="Too far", due_at=iso(NOW + timedelta(days=370))),
        await create(client, rep, "tasks", title="Someday"),
        await create(client, mate, "tasks", title="Not mine", due_at=iso(due)),
    ]
    deleted = await create(client, rep, "tasks", title="Deleted", due_at=iso(due))
    assert (
        await client.delete(f"/api/tasks/{deleted['id']}", headers=rep.headers)
    ).status_code == 204

    calendar = await read_feed(client, await make_feed(client, rep))
    found = events(calendar)
    assert set(found) == {shown["id"], loose["id"]}
    assert not {t["id"] for t in left_out} & set(found)

    event = found[shown["id"]]
    assert str(event["summary"]) == "Bring the catalogue"
    assert event.decoded("dtstart") == due
    assert event.decoded("duration") == timedelta(minutes=15)
    assert "Électricité Laurent" in str(event["location"])
    assert "3 rue Neuve" in str(event["location"])
    assert (event["geo"].latitude, event["geo"].longitude) == (45.764, 4.8357)
    assert str(event["url"]).endswith(f"/#/task/{shown['id']}/edit")
    alarms = event.walk("VALARM")
    assert len(alarms) == 1
    assert str(alarms[0]["action"]) == "DISPLAY"
    assert alarms[0].decoded("trigger") == remind
    assert not found[loose["id"]].walk("VALARM")
    assert "location" not in found[loose["id"]]


async def test_a_private_feed_leaves_out_where(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    shop = await create(
        client, rep, "accounts", name="Boulangerie Secrète", street="9 quai Vert", lat=45.7, lng=4.8
    )
    await create(client, rep, "tasks", title="Visit", account_id=shop["id"], due_at=iso(NOW))
    response = await client.get(await make_feed(client, rep, private=True))
    assert response.status_code == 200
    text = response.content.decode()
    assert "BEGIN:VEVENT" in text
    for secret in ("Boulangerie", "Secr", "quai Vert", "GEO", "LOCATION"):
        assert secret not in text
    status = (await client.get("/api/calendar/feed", headers=rep.headers)).json()
    assert status["active"] and status["private"]


async def test_a_new_link_replaces_the_old_and_revoking_ends_it(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    assert (await client.get("/api/calendar/feed", headers=rep.headers)).json() == {
        "active": False, "private": False, "created_at": None,
    }  # fmt: skip
    first = await make_feed(client, rep)
    second = await make_feed(client, rep)
    assert first != second
    assert_not_found(await client.get(first))
    await read_feed(client, second)
    assert (await client.delete("/api/calendar/feed", headers=rep.headers)).status_code == 204
    assert_not_found(await client.get(second))
    assert not (await client.get("/api/calendar/feed", headers=rep.headers)).json()["active"]
    rows = await db.fetch("SELECT * FROM calendar_feeds")
    assert rows == []


async def test_the_feed_stops_for_what_its_owner_no_longer_sees(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "head-office")
    south = await login_as(client, "rep", "south")
    shop = await create(client, rep, "accounts", name="Moves away", lat=45.7, lng=4.8)
    task = await create(client, rep, "tasks", title="Visit", account_id=shop["id"], due_at=iso(NOW))
    path = await make_feed(client, rep)
    assert task["id"] in events(await read_feed(client, path))

    moved = await client.post(
        f"/api/accounts/{shop['id']}/reassign",
        json={"team_id": south.team_id},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert task["id"] not in events(await read_feed(client, path))

    await db.fetch("UPDATE users SET active = {} WHERE id = {}", False, rep.user_id)
    assert_not_found(await client.get(path))


async def test_wrong_links_answer_404(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    path = await make_feed(client, rep)
    secret = path.removeprefix("/api/calendar/").removesuffix(".ics")
    for wrong in (
        "/api/calendar/nothing.ics",
        f"/api/calendar/{secret}",
        f"/api/calendar/{secret[:-1]}.ics",
        "/api/calendar/.ics",
        "/api/calendar/" + "x" * 300 + ".ics",
    ):
        assert_not_found(await client.get(wrong))
    bad = await client.post("/api/calendar/feed", json={"private": "yes"}, headers=rep.headers)
    assert bad.status_code == 400


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


async def test_a_planned_visit_lasts_half_an_hour_and_rings_at_its_instant(client: Any) -> None:
    """SPEC section 10: 30 minutes for a planned visit; times sent in the organisation's
    zone (Paris, +01:00 in winter) come out as the same instants, the alarm included."""
    rep = await login_as(client, "rep", "north")
    shop = await create(client, rep, "accounts", name="Cave Lumière", city="Lyon")
    day = (NOW + timedelta(days=3)).date().isoformat()
    visit = await create(
        client, rep, "tasks", title="Visit Cave Lumière", kind="visit", account_id=shop["id"],
        due_at=f"{day}T09:30:00+01:00", remind_at=f"{day}T08:45:00+01:00",
    )  # fmt: skip
    [event] = events(await read_feed(client, await make_feed(client, rep))).values()
    assert str(event["uid"]) == visit["id"]
    assert event.decoded("dtstart") == datetime.fromisoformat(f"{day}T08:30:00+00:00")
    assert event.decoded("duration") == timedelta(minutes=30)
    [alarm] = event.walk("VALARM")
    assert alarm.decoded("trigger") == datetime.fromisoformat(f"{day}T07:45:00+00:00")
    assert "Visit at Cave Lumière" in str(event["description"])
