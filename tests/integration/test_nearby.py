"""GET /api/nearby (SPEC section 5) on both engines: against a brute-force geodesic over
accounts spread worldwide (the antimeridian and the poles included), scoping, filters and
bad parameters."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic

from server.core.actor import Actor
from server.core.writer import Edit, Source, writing
from tests.factories import Login, login_as

# Where the generated accounts cluster, and where the searches are made from.
CENTRES = [
    (45.76, 4.84),  # Lyon
    (-8.5, 179.9),  # Tuvalu, at the antimeridian
    (65.0, -179.99),  # the Bering Sea, west of it
    (89.9, 30.0),  # by the North Pole
    (-89.95, -120.0),  # by the South Pole
    (0.0, 0.0),
]
RADII_M = [500.0, 5_000.0, 50_000.0, 200_000.0, 500_000.0]


def actor_of(login: Login) -> Actor:
    return Actor(login.user_id, login.username, login.role, login.team_id)


def scattered_points(rng: random.Random, count: int) -> list[tuple[float, float]]:
    """Points around the centres (up to 400 km away, across the antimeridian and the
    poles), uniform ones worldwide, and the awkward exact values."""
    points = [(90.0, 0.0), (-90.0, 45.0), (10.0, 180.0), (10.0, -180.0), (0.0, 0.0)]
    while len(points) < count:
        if rng.random() < 0.25:
            lat = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
            points.append((lat, rng.uniform(-180.0, 180.0)))
            continue
        lat, lng = rng.choice(CENTRES)
        # Mostly close by, some far: distances spread over several orders of magnitude.
        distance = 10 ** rng.uniform(1.0, math.log10(400_000.0))
        end = Geodesic.WGS84.Direct(lat, lng, rng.uniform(0.0, 360.0), distance)
        lng2 = (end["lon2"] + 180.0) % 360.0 - 180.0
        points.append((max(-90.0, min(90.0, end["lat2"])), lng2))
    return points


async def create_accounts(who: Login, rows: list[dict[str, Any]]) -> list[str]:
    """Many accounts at once, through the one writer (one transaction)."""
    ids = []
    actor = actor_of(who)
    async with writing(Source.REST) as writer:
        for fields in rows:
            record_id = str(uuid.uuid4())
            await writer.apply(actor, Edit("accounts", record_id, fields))
            ids.append(record_id)
    return ids


def distances(
    accounts: dict[str, tuple[float, float]], lat: float, lng: float
) -> list[tuple[float, str]]:
    """Every account's geopy geodesic distance from the point, nearest first."""
    return sorted((geodesic((lat, lng), point).m, key) for key, point in accounts.items())


def brute_force(
    accounts: dict[str, tuple[float, float]] | list[tuple[float, str]],
    lat: float,
    lng: float,
    radius_m: float,
    limit: int,
) -> list[tuple[str, float]]:
    ordered = distances(accounts, lat, lng) if isinstance(accounts, dict) else accounts
    within = [(key, distance) for distance, key in ordered if distance <= radius_m]
    return within[:limit]


async def search(client: Any, who: Login, **params: Any) -> list[tuple[str, float]]:
    response = await client.get("/api/nearby", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return [(r["account"]["id"], r["distance_m"]) for r in response.json()["results"]]


def assert_same(found: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [key for key, _ in found] == [key for key, _ in expected]
    for (_, got), (_, want) in zip(found, expected, strict=True):
        assert abs(got - want) <= 1.0


async def test_nearby_matches_a_brute_force_geodesic_worldwide(client: Any) -> None:
    rng = random.Random(20261124)
    rep = await login_as(client, "rep", "north")
    points = scattered_points(rng, 300)
    ids = await create_accounts(
        rep,
        [{"name": f"Prospect {i}", "lat": lat, "lng": lng} for i, (lat, lng) in enumerate(points)],
    )
    accounts = dict(zip(ids, points, strict=True))
    searches = [(lat, lng, RADII_M) for lat, lng in CENTRES]
    searches += [(rng.uniform(-90, 90), rng.uniform(-180, 180), [500_000.0]) for _ in range(8)]
    searches += [(10.0, 179.999, [300_000.0]), (10.0, -180.0, [300_000.0])]
    searches += [(90.0, 0.0, [50_000.0, 500_000.0]), (-90.0, 0.0, [500_000.0])]
    for lat, lng, radii in searches:
        ordered = distances(accounts, lat, lng)
        for radius in radii:
            for limit in (1, 7, 50, 500):
                found = await search(client, rep, lat=lat, lng=lng, radius_m=radius, limit=limit)
                assert_same(found, brute_force(ordered, lat, lng, radius, limit))


async def test_the_answer_carries_the_whole_account_row(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    [account_id] = await create_accounts(
        rep, [{"name": "Boulangerie", "city": "Lyon", "lat": 45.7640, "lng": 4.8357}]
    )
    response = await client.get(
        "/api/nearby", params={"lat": 45.76, "lng": 4.84, "radius_m": 1000}, headers=rep.headers
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    detail = await client.get(f"/api/accounts/{account_id}", headers=rep.headers)
    assert result["account"] == detail.json()["account"]
    expected = geodesic((45.76, 4.84), (45.7640, 4.8357)).m
    assert abs(result["distance_m"] - expected) <= 1.0


async def test_scope_a_rep_sees_only_the_team_an_admin_sees_all(client: Any) -> None:
    rng = random.Random(7)
    team_a = await login_as(client, "rep", "team-a")
    team_b = await login_as(client, "rep", "team-b")
    admin = await login_as(client, "admin", "head-office")
    points_a = [(45.76 + rng.uniform(-0.1, 0.1), 4.84 + rng.uniform(-0.1, 0.1)) for _ in range(40)]
    points_b = [(45.76 + rng.uniform(-0.1, 0.1), 4.84 + rng.uniform(-0.1, 0.1)) for _ in range(40)]
    ids_a = await create_accounts(
        team_a, [{"name": "A", "lat": p[0], "lng": p[1]} for p in points_a]
    )
    ids_b = await create_accounts(
        team_b, [{"name": "B", "lat": p[0], "lng": p[1]} for p in points_b]
    )
    everything = {
        **dict(zip(ids_a, points_a, strict=True)),
        **dict(zip(ids_b, points_b, strict=True)),
    }
    params = {"lat": 45.76, "lng": 4.84, "radius_m": 50_000, "limit": 500}

    seen_by_b = {key for key, _ in await search(client, team_b, **params)}
    assert seen_by_b == set(ids_b)
    seen_by_a = {key for key, _ in await search(client, team_a, **params)}
    assert seen_by_a == set(ids_a)
    found = await search(client, admin, **params)
    assert_same(found, brute_force(everything, 45.76, 4.84, 50_000, 500))


async def test_deleted_accounts_and_accounts_without_a_position_are_left_out(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    kept, gone = await create_accounts(
        rep,
        [{"name": "Kept", "lat": 48.85, "lng": 2.35}, {"name": "Gone", "lat": 48.851, "lng": 2.35}],
    )
    await create_accounts(rep, [{"name": "Nowhere", "city": "Paris"}])
    assert (await client.delete(f"/api/accounts/{gone}", headers=rep.headers)).status_code == 204
    found = await search(client, rep, lat=48.85, lng=2.35, radius_m=10_000)
    assert [key for key, _ in found] == [kept]


async def test_status_filter_and_default_limit(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    rows = [
        {
            "name": f"P{i}",
            "status": "prospect" if i % 3 else "customer",
            "lat": 50 + i * 1e-4,
            "lng": 3.0,
        }
        for i in range(120)
    ]
    ids = await create_accounts(rep, rows)
    found = await search(client, rep, lat=50.0, lng=3.0, radius_m=100_000)
    assert [key for key, _ in found] == ids[:50]
    customers = await search(client, rep, lat=50.0, lng=3.0, radius_m=100_000, status="customer")
    assert [key for key, _ in customers] == ids[0::3][:50]


BAD_PARAMS: list[dict[str, Any]] = [
    {},
    {"lng": 4.8, "radius_m": 1000},
    {"lat": 45.7, "radius_m": 1000},
    {"lat": 45.7, "lng": 4.8},
    {"lat": "north", "lng": 4.8, "radius_m": 1000},
    {"lat": "nan", "lng": 4.8, "radius_m": 1000},
    {"lat": 45.7, "lng": "inf", "radius_m": 1000},
    {"lat": 45.7, "lng": 4.8, "radius_m": "Infinity"},
    {"lat": 90.5, "lng": 4.8, "radius_m": 1000},
    {"lat": 45.7, "lng": -180.01, "radius_m": 1000},
    {"lat": 45.7, "lng": 4.8, "radius_m": 0},
    {"lat": 45.7, "lng": 4.8, "radius_m": -5},
    {"lat": 45.7, "lng": 4.8, "radius_m": 500_001},
    {"lat": 45.7, "lng": 4.8, "radius_m": 1000, "limit": 0},
    {"lat": 45.7, "lng": 4.8, "radius_m": 1000, "limit": 501},
    {"lat": 45.7, "lng": 4.8, "radius_m": 1000, "limit": "ten"},
    {"lat": 45.7, "lng": 4.8, "radius_m": 1000, "limit": "1.5"},
    {"lat": 45.7, "lng": 4.8, "radius_m": 1000, "status": "lead"},
    {"lat": "4" * 100, "lng": 4.8, "radius_m": 1000},
    {"lat": "", "lng": 4.8, "radius_m": 1000},
    {"lat": "1_0", "lng": 4.8, "radius_m": 1000},
]


async def test_bad_parameters_answer_400(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    for params in BAD_PARAMS:
        response = await client.get("/api/nearby", params=params, headers=rep.headers)
        assert response.status_code == 400, (params, response.text)
        body = response.json()
        assert body["error"] == "malformed" and body["detail"], params


async def test_nearby_needs_a_token(client: Any) -> None:
    response = await client.get("/api/nearby", params={"lat": 1, "lng": 1, "radius_m": 10})
    assert response.status_code == 401
