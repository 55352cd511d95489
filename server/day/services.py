"""Ordering a day's stops: the accounts are read in the caller's scope, the order is
geo.route's, computed in a thread of its own (up to about a tenth of a second of Python for
50 stops) so that it never holds the event loop."""

from __future__ import annotations

import asyncio
import math
import uuid
from concurrent.futures import ThreadPoolExecutor

from geo.route import MAX_STOPS, plan_route
from server.core.actor import Actor
from server.core.rows import live_rows_in_scope
from server.day.schemas import RouteRequest, RouteResponse
from server.errors import ApiError

# Two requests at once at most; others wait their turn without holding anything else up.
_PLANNERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="route")


async def route(actor: Actor, request: RouteRequest) -> RouteResponse:
    """The shortest order of the request's stops from its start (SPEC section 14)."""
    start = _start(request)
    stops = _stop_ids(request.stops)
    points = await _positions(actor, stops)
    loop = asyncio.get_running_loop()
    planned = await loop.run_in_executor(
        _PLANNERS, lambda: plan_route(start, points, back_to_start=request.back_to_start)
    )
    return RouteResponse(
        order=[stops[i] for i in planned.order],
        distance_m=round(planned.distance_m, 1),
        as_given_m=round(planned.as_given_m, 1),
        legs=[round(leg, 1) for leg in planned.legs],
    )


def _start(request: RouteRequest) -> tuple[float, float]:
    lat, lng = request.start.lat, request.start.lng
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lng) and -180 <= lng <= 180):
        raise ApiError(
            422, "invalid", "start must be a position: lat from -90 to 90, lng from -180 to 180."
        )
    return lat, lng


def _stop_ids(stops: list[str]) -> list[str]:
    if not stops:
        raise ApiError(422, "no_stops", "A route needs at least one stop: an account id.")
    if len(stops) > MAX_STOPS:
        raise ApiError(
            422,
            "too_many_stops",
            f"A route has at most {MAX_STOPS} stops; this one has {len(stops)}.",
        )
    ids: list[str] = []
    for stop in stops:
        try:
            ids.append(str(uuid.UUID(stop)))
        except ValueError:
            raise ApiError(
                422, "invalid", f"Each stop is an account id; {stop[:60]!r} is not."
            ) from None
    if len(set(ids)) != len(ids):
        raise ApiError(422, "invalid", "Each account may be a stop only once.")
    return ids


async def _positions(actor: Actor, ids: list[str]) -> list[tuple[float, float]]:
    rows = await live_rows_in_scope(actor, "accounts", ids, "id, name, lat, lng")
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ApiError(422, "unknown_account", f"No account you can see has the id {missing[0]}.")
    placeless = [rows[i]["name"] for i in ids if rows[i]["lat"] is None or rows[i]["lng"] is None]
    if placeless:
        raise ApiError(
            422,
            "no_position",
            f"{placeless[0]} has no position yet, so it cannot be put on a route.",
        )
    return [(float(rows[i]["lat"]), float(rows[i]["lng"])) for i in ids]
