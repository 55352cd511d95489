"""The wire types of `POST /api/route`."""

from __future__ import annotations

import msgspec

from geo.route import MAX_STOPS


class Position(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    lat: float
    lng: float


class RouteRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where the rep is, the accounts to visit (each once), and whether to come back."""

    start: Position
    # Checked by the service (422 with a sentence) rather than by the decoder, so that one
    # too many stops says so instead of "malformed".
    stops: list[str] = msgspec.field(default_factory=list)
    back_to_start: bool = msgspec.field(default=False, name="return")


class RouteResponse(msgspec.Struct, kw_only=True):
    order: list[str]  # the stops' account ids, in driving order
    distance_m: float  # the length of that order
    as_given_m: float  # the length of the order the stops were sent in
    legs: list[float]  # start -> first stop, ..., (last stop -> start with "return")


__all__ = ["MAX_STOPS", "Position", "RouteRequest", "RouteResponse"]
