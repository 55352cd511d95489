"""The nearby search of SPEC section 5: the accounts in the caller's scope within a radius of
a point, nearest first by the WGS-84 geodesic.

A search never scans every account. The database answers which accounts lie in the boxes
of `geo.search_boxes` (an index on `(scope, lat, lng)`; `(lat, lng)` for an admin), and
Python ranks those exactly with `geo.rank`. Two things keep both steps small:

- The search widens: it first looks within a couple of kilometres and only widens the
  circle (up to the radius asked for) while it has found fewer accounts than `limit`, so a
  search in a city does not read every account of the 25 km around it.
- Only accounts that can be among the `limit` nearest reach the exact geodesic (about
  100 µs each): a cheap lower bound and a matching upper bound shortlist them first.

One rep must not stall everyone (10,000 accounts at one point, docs/security.md): the
boxes are read with their ids and positions only, as a slow read (off the event loop on
SQLite, time-limited), and the whole rows of the answer alone afterwards; the geodesic is
computed once per distinct position, nearest lower bound first, stopping as soon as no
position left can be nearer than the `limit`-th account found, and at most
MAX_GEODESICS times; the Python work of each step runs in a small pool of threads of its
own (RANKING_THREADS), so the loop keeps answering other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from geo.bbox import Box, search_boxes
from geo.distance import distance_lower_bound_m, distance_m
from server import db
from server.core.actor import Actor
from server.core.fields import ACCOUNT_STATUSES
from server.core.rows import record_from_row, wire_row
from server.errors import ApiError
from server.nearby.schemas import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_RADIUS_M,
    NearbyQuery,
    NearbyResponse,
    NearbyResult,
)

# The first circle searched, and how much it may grow at each step (as a factor of the
# radius; the area grows with its square).
FIRST_RADIUS_M = 2_000.0
MIN_GROWTH, MAX_GROWTH = 2.0, 8.0
# The geodesic is never longer than the inner-sphere distance (geo.distance) times the
# ellipsoid's largest radius of curvature over its smallest: a/sqrt(1-e²) / (a(1-e²)) =
# (1-e²)^-1.5 = 1.010126 for WGS-84. With a metre of slack for rounding, like geo.rank's.
UPPER_FACTOR = 1.0102
SLACK_M = 1.0
# At most this many geodesics a search (about 0.1 s of CPU). Only a crowd of distinct
# positions that the cheap bound cannot tell apart reaches it; the answer then keeps its
# exact distances, but may leave out an account nearer than its last one by at most the
# bound's 1% (docs/security.md).
MAX_GEODESICS = 2_000
# The ranking's threads: its Python work holds the GIL, but in a thread the event loop
# still gets it every few milliseconds instead of waiting for the whole ranking.
RANKING_THREADS = 2
_RANKING = ThreadPoolExecutor(max_workers=RANKING_THREADS, thread_name_prefix="nearby-rank")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")

# The accounts at one position: their ids (in no order), lat, lng.
Candidate = tuple[tuple[str, ...], float, float]


# -- the query -----------------------------------------------------------------------------


def parse_query(
    lat: str | None,
    lng: str | None,
    radius_m: str | None,
    limit: str | None,
    status: str | None,
) -> NearbyQuery:
    """Check the query string; anything missing or out of range answers 400."""
    point = (_number("lat", lat, -90.0, 90.0), _number("lng", lng, -180.0, 180.0))
    radius = _number("radius_m", radius_m, 0.0, MAX_RADIUS_M)
    if radius <= 0:
        raise _bad("radius_m must be more than 0 metres.")
    count = DEFAULT_LIMIT
    if limit is not None:
        if not _INTEGER.fullmatch(limit) or not 1 <= int(limit) <= MAX_LIMIT:
            raise _bad(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
        count = int(limit)
    if status is not None and status not in ACCOUNT_STATUSES:
        raise _bad(f"status must be one of {', '.join(ACCOUNT_STATUSES)}.")
    return NearbyQuery(
        lat=point[0],
        lng=point[1],
        radius_m=radius,
        limit=count,
        status=status,
    )


def _number(name: str, text: str | None, low: float, high: float) -> float:
    if text is None or text == "":
        raise _bad(f"{name} is required.")
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise _bad(f"{name} must be a number from {low:g} to {high:g}.")
    return value


def _bad(detail: str) -> ApiError:
    return ApiError(400, "malformed", detail)


# -- the search ----------------------------------------------------------------------------


async def nearby(actor: Actor, query: NearbyQuery) -> NearbyResponse:
    """The accounts the actor sees within the query's radius, nearest first."""
    async with db.read_transaction():  # the positions and the rows: one snapshot
        ranked = await nearest(actor, query)
        rows = await _rows(actor, [key for key, _ in ranked])
    results = [
        NearbyResult(
            account=wire_row(record_from_row("accounts", rows[key], with_stamps=False)),
            distance_m=round(d, 1),
        )
        for key, d in ranked
        if key in rows
    ]
    return NearbyResponse(results=results)


async def nearest(actor: Actor, query: NearbyQuery) -> list[tuple[str, float]]:
    """(account id, geodesic metres) of the nearest accounts, widening the search circle
    until it certainly holds `limit` of them or reaches the query's radius. The answer comes
    from one SELECT, the last."""
    radius = min(query.radius_m, FIRST_RADIUS_M)
    loop = asyncio.get_running_loop()
    while True:
        candidates = await _candidates(actor, query, search_boxes(query.lat, query.lng, radius))
        step = await loop.run_in_executor(_RANKING, _step, query, candidates, radius)
        if isinstance(step, list):
            return step
        radius = min(radius * step, query.radius_m)


def _step(
    query: NearbyQuery, candidates: list[Candidate], radius: float
) -> list[tuple[str, float]] | float:
    """The answer, if the circle of `radius` certainly holds it; else how much to widen."""
    bounded = lower_bounds(query.lat, query.lng, candidates, radius)
    # Everything beyond this circle is farther than what it holds: once `limit` accounts
    # are certainly inside it, the nearest are among its candidates.
    inside = sum(len(at[0]) for low, at in bounded if low * UPPER_FACTOR + SLACK_M <= radius)
    if inside >= query.limit or radius >= query.radius_m:
        return rank_by_position(query.lat, query.lng, bounded, radius, query.limit)
    growth = math.sqrt(2.0 * query.limit / max(inside, 1))
    return min(max(growth, MIN_GROWTH), MAX_GROWTH)


def rank_by_position(
    lat: float, lng: float, bounded: list[tuple[float, Candidate]], radius_m: float, limit: int
) -> list[tuple[str, float]]:
    """Up to `limit` (key, geodesic metres) within radius_m, nearest first (equal distances
    by key), from positions (each with the keys of the accounts there) with their lower
    bounds.

    The geodesic is computed once per distinct position, in the order of the positions'
    lower bounds, and no more once the next bound exceeds the `limit`-th distance found
    (nothing left can be nearer, nor as near), nor past MAX_GEODESICS."""
    found: list[tuple[float, str]] = []
    nearest_k: list[float] = []  # the `limit` smallest distances found, negated (a max-heap)
    computed = 0
    for low, (keys, cand_lat, cand_lng) in sorted(bounded, key=lambda b: b[0]):
        # SLACK_M absorbs the bound's rounding: ties are broken by key, so an account at the
        # `limit`-th distance must still be seen.
        if len(nearest_k) >= limit and low > -nearest_k[0] + SLACK_M:
            break
        if computed >= MAX_GEODESICS:
            break
        distance = distance_m(lat, lng, cand_lat, cand_lng)
        computed += 1
        if distance > radius_m:
            continue
        for key in heapq.nsmallest(limit, keys):  # a pile: only its first `limit` can be in
            found.append((distance, key))
            if len(nearest_k) < limit:
                heapq.heappush(nearest_k, -distance)
            elif distance < -nearest_k[0]:
                heapq.heapreplace(nearest_k, -distance)
    return [(key, distance) for distance, key in heapq.nsmallest(limit, found)]


def lower_bounds(
    lat: float, lng: float, candidates: Iterable[Candidate], radius_m: float
) -> list[tuple[float, Candidate]]:
    """The candidates that may be within radius_m, each with a distance it cannot be under."""
    bounded: list[tuple[float, Candidate]] = []
    for candidate in candidates:
        low = distance_lower_bound_m(lat, lng, candidate[1], candidate[2])
        if low <= radius_m + SLACK_M:
            bounded.append((low, candidate))
    return bounded


async def _candidates(actor: Actor, query: NearbyQuery, boxes: Sequence[Box]) -> list[Candidate]:
    """The positions of the accounts in the boxes, each with the ids of those there: as
    many as a rep may have put there, so a slow read (off the event loop on SQLite)."""
    sql, args = candidate_sql(actor, query.status, boxes)
    return [
        (tuple(row["ids"].split(",")), float(row["lat"]), float(row["lng"]))
        for row in await db.fetch(sql, *args, slow=True)
    ]


async def _rows(actor: Actor, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The whole rows of the answer's accounts, still in the actor's sight."""
    if not ids:
        return {}
    where, args = db.any_of("id", ids)  # at most MAX_LIMIT
    return {
        str(row["id"]): row
        for row in await db.fetch(f"SELECT * FROM accounts WHERE {where}", *args)
        if not row["deleted"] and actor.sees(row["scope"])
    }


def candidate_sql(actor: Actor, status: str | None, boxes: Sequence[Box]) -> tuple[str, list[Any]]:
    """One SELECT per box (two across the antimeridian), each a range scan of the index;
    one row per position, with the ids of the accounts there (10,000 accounts at one point
    are one row, one lower bound and one geodesic)."""
    selects: list[str] = []
    args: list[Any] = []
    scopes = actor.scopes
    for box in boxes:
        where = "lat BETWEEN {} AND {} AND lng BETWEEN {} AND {} AND deleted = {}"
        args += [box.lat_min, box.lat_max, box.lng_min, box.lng_max, False]
        if scopes is not None:
            where += f" AND scope IN ({', '.join('{}' for _ in scopes)})"
            args += list(scopes)
        if status is not None:
            where += " AND status = {}"
            args.append(status)
        selects.append(f"SELECT id, lat, lng FROM accounts WHERE {where}")
    ids = "string_agg(id::text, ',')" if db.is_postgres() else "group_concat(id, ',')"
    union = " UNION ALL ".join(selects)
    return f"SELECT lat, lng, {ids} AS ids FROM ({union}) AS boxes GROUP BY lat, lng", args
