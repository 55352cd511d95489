"""The map's routes: `GET /api/config` (its settings for the app), `GET /api/tiles` and
`GET /api/tiles/{z}/{x}/{y}` (the territory pack: its tiles, one tile), and
`GET /basemap/world.json` (the offline basemap, open like the app's own files: the service
worker keeps it from the app's first start)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from server.auth.dependencies import CurrentActor
from server.maps import services
from server.maps.schemas import ClientConfig, TileList
from server.settings import Settings

# The app's gzip middleware leaves these routes alone (server/app.py): the basemap is
# compressed once, at the best level, when it is built.
SKIP_COMPRESSION = "skip_compression"


class MapController(Controller):
    path = "/api"
    tags = ["map"]

    @get("/config", operation_id="client_config")
    async def config(
        self, actor: CurrentActor, settings: NamedDependency[Settings]
    ) -> ClientConfig:
        """The street tiles the map may use and the territory pack, if any (docs/map.md)."""
        return services.client_config(settings)

    @get("/tiles", operation_id="territory_tiles")
    async def tiles(self, actor: CurrentActor, settings: NamedDependency[Settings]) -> TileList:
        """Every tile of the territory pack, for a phone that keeps them all."""
        return services.territory_tiles(settings)

    @get("/tiles/{z:str}/{x:str}/{y:str}", operation_id="territory_tile")
    async def tile(
        self,
        actor: CurrentActor,
        settings: NamedDependency[Settings],
        z: FromPath[str],
        x: FromPath[str],
        y: FromPath[str],
    ) -> Response[bytes]:
        """One tile of the territory pack (FIELDCRM_TILE_PACK), XYZ numbering."""
        zoom, column, row = services.parse_tile(z, x, y)
        tile, media_type = services.territory_tile(settings, zoom, column, row)
        return Response(tile, media_type=media_type)


@get(
    "/basemap/world.json",
    include_in_schema=False,
    operation_id="world_basemap",
    opt={SKIP_COMPRESSION: True},
)
async def world_basemap(request: Request[Any, Any, Any]) -> Response[bytes]:
    document = await services.world_basemap()
    headers = {"ETag": document.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == document.etag:
        return Response(b"", status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            document.gzipped,
            media_type="application/json",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return Response(document.raw, media_type="application/json", headers=headers)
