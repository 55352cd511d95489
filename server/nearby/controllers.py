"""`GET /api/nearby` (SPEC section 5) and `GET /api/config`, the map settings the app needs."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from server.auth.dependencies import CurrentActor
from server.nearby import services
from server.nearby.schemas import ClientConfig, NearbyResponse
from server.settings import Settings

# Read as text and checked by the service, so that every bad value gets the same clear 400.
Param = Annotated[str | None, QueryParameter(max_length=40)]

OSM_ATTRIBUTION = "© OpenStreetMap contributors"


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

    @get("/config", operation_id="client_config")
    async def config(
        self, actor: CurrentActor, settings: NamedDependency[Settings]
    ) -> ClientConfig:
        """The tile server the map may use (none: the map shows markers only)."""
        return ClientConfig(tile_url=settings.tile_url, tile_attribution=tile_attribution(settings))


def tile_attribution(settings: Settings) -> str:
    """FIELDCRM_TILE_ATTRIBUTION, else OpenStreetMap's credit for its own tile servers."""
    if not settings.tile_url:
        return ""
    if settings.tile_attribution:
        return settings.tile_attribution
    return OSM_ATTRIBUTION if "openstreetmap" in settings.tile_url else ""
