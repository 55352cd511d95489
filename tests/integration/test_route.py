"""POST /api/route (SPEC section 14) on both engines: the order, the lengths, scope, and
every bad request a clear 422 or 400."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from geo.distance import distance_m
from tests.factories import Login, login_as

START = {"lat": 48.8566, "lng": 2.3522}


async def account(client: Any, who: Login, name: str, lat: float | None, lng: float | None) -> str:
    fields: dict[str, Any] = {"name": name}
    if lat is not None:
        fields |= {"lat": lat, "lng": lng}
    response = await client.post("/api/accounts", json=fields, headers=who.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def route(client: Any, who: Login, **body: Any) -> Any:
    return await client.post("/api/route", json={"start": START, **body}, headers=who.headers)


async def test_the_stops_come_back_in_the_shortest_order(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    # Along a line going east, sent out of order: the best open path visits them west to east.
    places = {
        await account(client, rep, f"Stop {k}", 48.8566, 2.36 + 0.01 * k): k for k in (3, 1, 4, 2)
    }
    ids = list(places)
    response = await route(client, rep, stops=ids)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [places[i] for i in body["order"]] == [1, 2, 3, 4]
    points = [(START["lat"], START["lng"])] + [
        (48.8566, 2.36 + 0.01 * places[i]) for i in body["order"]
    ]
    legs = [distance_m(*a, *b) for a, b in itertools.pairwise(points)]
    assert body["legs"] == [round(leg, 1) for leg in legs]
    assert abs(body["distance_m"] - sum(legs)) < 0.2
    assert body["as_given_m"] > body["distance_m"]

    back = (await route(client, rep, stops=ids, **{"return": True})).json()
    assert len(back["legs"]) == 5
    last = 2.36 + 0.01 * places[back["order"][-1]]
    assert abs(back["legs"][-1] - distance_m(48.8566, last, START["lat"], START["lng"])) < 0.2
    # Out to the far end and back the same way: twice the farthest stop, whichever way round.
    far = distance_m(48.8566, 2.40, START["lat"], START["lng"])
    assert abs(back["distance_m"] - 2 * far) < 0.5


async def test_only_accounts_the_caller_sees_and_that_have_a_position(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    other = await login_as(client, "rep", "south")
    theirs = await account(client, other, "Not yours", 48.86, 2.36)
    mine = await account(client, rep, "Yours", 48.86, 2.37)
    placeless = await account(client, rep, "Nowhere yet", None, None)

    hidden = await route(client, rep, stops=[mine, theirs])
    assert hidden.status_code == 422
    assert hidden.json()["error"] == "unknown_account"
    assert "Not yours" not in hidden.text  # a hidden account's name never leaks

    unknown = await route(client, rep, stops=[str(uuid.uuid4())])
    assert unknown.json()["error"] == "unknown_account"

    nowhere = await route(client, rep, stops=[mine, placeless])
    assert nowhere.status_code == 422
    assert nowhere.json()["error"] == "no_position"
    assert "Nowhere yet" in nowhere.json()["detail"]

    await client.delete(f"/api/accounts/{mine}", headers=rep.headers)
    gone = await route(client, rep, stops=[mine])
    assert gone.json()["error"] == "unknown_account"


async def test_bad_requests_answer_clear_errors(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    mine = await account(client, rep, "Yours", 48.86, 2.37)
    too_many = [str(uuid.uuid4()) for _ in range(51)]
    cases: list[tuple[Any, int, str]] = [
        ({"start": START, "stops": too_many}, 422, "too_many_stops"),
        ({"start": START, "stops": []}, 422, "no_stops"),
        ({"start": START}, 422, "no_stops"),
        ({"start": START, "stops": [mine, mine]}, 422, "invalid"),
        ({"start": START, "stops": ["not-an-id"]}, 422, "invalid"),
        ({"start": {"lat": 91, "lng": 0}, "stops": [mine]}, 422, "invalid"),
        ({"start": START, "stops": [mine], "speed": 3}, 400, ""),
        ({"stops": [mine]}, 400, ""),
        ({"start": START, "stops": "abc"}, 400, ""),
        ([1, 2], 400, ""),
    ]
    for body, status, code in cases:
        response = await client.post("/api/route", json=body, headers=rep.headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"]
        if code:
            assert response.json()["error"] == code
    huge = await client.post(
        "/api/route",
        content=b'{"start": {"lat": 1e400, "lng": 0}, "stops": []}',
        headers={**rep.headers, "Content-Type": "application/json"},
    )
    assert huge.status_code == 400, huge.text
    assert huge.json()["error"] == "malformed"
    assert (await client.post("/api/route", json={"start": START, "stops": []})).status_code == 401
