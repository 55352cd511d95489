"""`GET /api/nearby` (SPEC section 5)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from server.auth.dependencies import CurrentActor
from server.nearby import services
from server.nearby.schemas import NearbyResponse

# Read as text and checked by the service, so that every bad value gets the same clear 400.
Param = Annotated[str | None, QueryParameter(max_length=40)]


class NearbyController(Controller):
    path = "/api"
    tags = ["nearby"]

    @get("/nearby", operation_id="nearby_accounts")
    async def nearby(
        self,
        actor: CurrentActor,
        lat: Param = None,
        lng: Param = None,
        radius_m: Param = None,
        limit: Param = None,
        status: Param = None,
    ) -> NearbyResponse:
        """The accounts in the caller's scope within radius_m of (lat, lng), nearest first."""
        query = services.parse_query(lat, lng, radius_m, limit, status)
        return await services.nearby(actor, query)
