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
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from geo.bbox import Box, search_boxes
from geo.distance import distance_lower_bound_m
from geo.nearby import rank
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

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")

Candidate = tuple[str, float, float]


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
    async with _one_connection():
        ranked = await nearest(actor, query)
    results = [
        NearbyResult(
            account=wire_row(record_from_row("accounts", row, with_stamps=False)),
            distance_m=round(d, 1),
        )
        for row, d in ranked
    ]
    return NearbyResponse(results=results)


async def nearest(actor: Actor, query: NearbyQuery) -> list[tuple[dict[str, Any], float]]:
    """(account row, geodesic metres) of the nearest accounts, widening the search circle
    until it certainly holds `limit` of them or reaches the query's radius. The answer comes
    from one SELECT, the last, so it is one consistent view of the accounts."""
    radius = min(query.radius_m, FIRST_RADIUS_M)
    while True:
        rows = await _candidates(actor, query, search_boxes(query.lat, query.lng, radius))
        candidates = [(key, float(row["lat"]), float(row["lng"])) for key, row in rows.items()]
        bounded = lower_bounds(query.lat, query.lng, candidates, radius)
        # Everything beyond this circle is farther than what it holds: once `limit` accounts
        # are certainly inside it, the nearest are among its candidates.
        inside = sum(1 for low, _ in bounded if low * UPPER_FACTOR + SLACK_M <= radius)
        if inside >= query.limit or radius >= query.radius_m:
            shortlist = shortlist_candidates(bounded, query.limit)
            ranked = rank(query.lat, query.lng, shortlist, radius, query.limit)
            return [(rows[key], distance) for key, distance in ranked]
        growth = math.sqrt(2.0 * query.limit / max(inside, 1))
        radius = min(radius * min(max(growth, MIN_GROWTH), MAX_GROWTH), query.radius_m)


@asynccontextmanager
async def _one_connection() -> AsyncIterator[None]:
    """The search's queries on one connection. On SQLite a read transaction gives them one
    (outside a transaction every query opens its own); on PostgreSQL each query borrows a
    pooled connection, cheaper than the BEGIN, SET and COMMIT a transaction adds."""
    if db.is_postgres():
        yield
    else:
        async with db.read_transaction():
            yield


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


def shortlist_candidates(bounded: list[tuple[float, Candidate]], limit: int) -> list[Candidate]:
    """The candidates that can be among the `limit` nearest.

    The `limit` candidates with the smallest upper bounds are certainly within the largest
    of those bounds, so the `limit` nearest are too, and any candidate whose lower bound
    exceeds it can be dropped without computing its geodesic.
    """
    if len(bounded) <= limit:
        return [candidate for _, candidate in bounded]
    kth_low = heapq.nsmallest(limit, (low for low, _ in bounded))[-1]
    enough = kth_low * UPPER_FACTOR + SLACK_M
    return [candidate for low, candidate in bounded if low <= enough]


async def _candidates(
    actor: Actor, query: NearbyQuery, boxes: Sequence[Box]
) -> dict[str, dict[str, Any]]:
    sql, args = candidate_sql(actor, query.status, boxes)
    return {str(row["id"]): row for row in await db.fetch(sql, *args)}


def candidate_sql(actor: Actor, status: str | None, boxes: Sequence[Box]) -> tuple[str, list[Any]]:
    """One SELECT per box (two across the antimeridian), each a range scan of the index."""
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
        selects.append(f"SELECT * FROM accounts WHERE {where}")
    return " UNION ALL ".join(selects), args
