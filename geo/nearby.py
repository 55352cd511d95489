"""The exact step of a nearby search: keep what is within the radius, nearest first."""

import heapq
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from geo.distance import check_point, distance_lower_bound_m, distance_m


class _Orderable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


Key = TypeVar("Key", bound=_Orderable)

# The inner-sphere bound is exact mathematically; this slack only absorbs floating-point
# rounding, so that a point the bound rejects is certainly beyond the radius.
_BOUND_SLACK_M = 1.0


def rank(
    lat: float,
    lng: float,
    candidates: Iterable[tuple[Key, float, float]],
    radius_m: float,
    limit: int,
) -> list[tuple[Key, float]]:
    """Return up to ``limit`` (key, distance in metres) pairs, nearest first.

    ``candidates`` are (key, lat, lng) triples, typically the accounts that the database
    found inside ``bbox.search_boxes``. A candidate is kept when its WGS-84 geodesic distance
    from (lat, lng) is at most ``radius_m``. Equal distances are ordered by key, so the answer
    does not depend on the order the database returned rows in. Raises ValueError for an
    invalid centre or candidate point, a negative or NaN radius, or a negative limit.
    """
    if not radius_m >= 0.0:
        raise ValueError(f"radius_m must be a non-negative number, not {radius_m!r}")
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit!r}")
    check_point(lat, lng)

    within: list[tuple[float, Key]] = []
    for key, cand_lat, cand_lng in candidates:
        # The cheap bound skips the geodesic for box corners that lie outside the circle.
        if distance_lower_bound_m(lat, lng, cand_lat, cand_lng) > radius_m + _BOUND_SLACK_M:
            continue
        distance = distance_m(lat, lng, cand_lat, cand_lng)
        if distance <= radius_m:
            within.append((distance, key))
    return [(key, distance) for distance, key in heapq.nsmallest(limit, within)]
