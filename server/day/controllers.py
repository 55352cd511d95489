"""`POST /api/route` (SPEC section 14)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from server.auth.dependencies import CurrentActor
from server.day import services
from server.day.schemas import RouteRequest, RouteResponse


class RouteController(Controller):
    path = "/api"
    tags = ["day"]

    @post("/route", operation_id="order_stops", status_code=200)
    async def route(self, actor: CurrentActor, data: JSONBody[RouteRequest]) -> RouteResponse:
        """The order of the stops that makes the path from start shortest (geodesic)."""
        return await services.route(actor, data)
