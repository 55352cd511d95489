"""The wire types of the nearby search."""

from __future__ import annotations

from typing import Any

import msgspec

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_RADIUS_M = 500_000.0


class NearbyQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A checked nearby search: a valid point, a radius in metres, how many, which status."""

    lat: float
    lng: float
    radius_m: float
    limit: int = DEFAULT_LIMIT
    status: str | None = None


class NearbyResult(msgspec.Struct, kw_only=True):
    account: dict[str, Any]  # the whole row, as the sync and REST endpoints give it
    distance_m: float


class NearbyResponse(msgspec.Struct, kw_only=True):
    results: list[NearbyResult]
