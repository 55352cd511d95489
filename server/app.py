"""The Litestar application: routes, the lifespan that owns the pool, and error handling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Response, Router, get
from litestar.config.compression import CompressionConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from server import blobs as blob_storage
from server import db
from server.attachments.controllers import AttachmentBlobsController
from server.auth.controllers import AuthController, UsersController
from server.auth.dependencies import provide_actor
from server.background import run_background_jobs
from server.bodies import BoundedRequest
from server.calendar.controllers import CalendarController, CalendarFeedController
from server.campaigns.controllers import CampaignsController
from server.core import automation, limits
from server.core.changelog.clients import run_report_writer
from server.core.phones import set_default_region
from server.core.rows import WIRE_ROWS
from server.day.controllers import RouteController
from server.errors import EXCEPTION_HANDLERS, error_response, too_slow_handler
from server.history.controllers import HistoryController
from server.maps.controllers import MapController, world_basemap
from server.merging.controllers import MergeController
from server.migrate import migrate
from server.nearby.controllers import NearbyController
from server.org.controllers import OrgRulesController
from server.privacy.controllers import PrivacyController
from server.push.controllers import PushController
from server.pwa import (
    PWA_HANDLERS,
    content_security_policy,
    security_headers_middleware,
    static_routers,
    valid_host_middleware,
)
from server.records.controllers import (
    RECORD_CONTROLLERS,
    ReassignController,
    RejectionsController,
)
from server.reports.controllers import ReportsController, TeamController
from server.settings import Settings, load_settings
from server.syncing.controllers import (
    COMPRESS_FROM_BYTES,
    GZIP_LEVEL,
    SKIP_COMPRESSION,
    SyncController,
)
from server.tables import bind_tables
from server.transfer.controllers import DuplicatesController, ExportController, ImportController
from server.transfer.importing import stop_imports
from sync.protocol import MAX_BODY_BYTES


@get("/api/health", operation_id="health", tags=["meta"])
async def health() -> dict[str, str]:
    await db.fetch("SELECT 1 AS ok")
    return {"status": "ok"}


def schema_not_found(response: Response[Any]) -> Response[Any]:
    """Litestar answers other pages under /schema with an HTML 404: make it a JSON error."""
    if response.status_code == 404:
        return error_response(404, "not_found", "The API is described at /schema/openapi.json.")
    return response


def create_app(
    settings: Settings | None = None, *, run_migrations: bool = True, dispatcher: bool = False
) -> Litestar:
    settings = settings or load_settings()
    bind_tables(db.configure(settings.database))
    db.configure_replica(settings.database_replica, settings.replica_max_lag_s)
    WIRE_ROWS.resize(settings.row_cache_bytes)
    limits.configure(settings)
    automation.configure(settings.timezone)
    set_default_region(settings.default_region)
    blob_storage.configure(settings.blob_url)
    background: list[asyncio.Task[Any]] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await db.start()
        try:
            if run_migrations:
                await migrate()
            # Pull-only syncs' device reports (SPEC 4 rule 14), written about once a second.
            background.append(asyncio.create_task(run_report_writer()))
            if dispatcher:
                background.append(asyncio.create_task(run_background_jobs(settings)))
            yield
        finally:
            await stop_imports()  # marked failed while the database is still there
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await db.stop()

    async def provide_settings() -> Settings:
        return settings

    return Litestar(
        route_handlers=[
            health,
            AuthController,
            UsersController,
            SyncController,
            ReassignController,
            RejectionsController,
            *RECORD_CONTROLLERS,
            PushController,
            NearbyController,
            RouteController,
            CalendarController,
            CalendarFeedController,
            ReportsController,
            TeamController,
            ExportController,
            ImportController,
            DuplicatesController,
            HistoryController,
            OrgRulesController,
            CampaignsController,
            AttachmentBlobsController,
            PrivacyController,
            MergeController,
            MapController,
            world_basemap,
            *PWA_HANDLERS,
            *static_routers(settings.pwa_dir),
        ],
        dependencies={
            "actor": Provide(provide_actor),
            "settings": Provide(provide_settings, use_cache=True),
        },
        lifespan=[lifespan],
        exception_handlers={**EXCEPTION_HANDLERS, db.StatementTimeout: too_slow_handler},
        compression_config=CompressionConfig(
            backend="gzip",
            minimum_size=COMPRESS_FROM_BYTES,
            gzip_compress_level=GZIP_LEVEL,
            exclude_opt_key=SKIP_COMPRESSION,
        ),
        openapi_config=OpenAPIConfig(
            title="fieldcrm",
            version="1",
            path="/schema",
            # The document only, no HTML pages: docs/decisions/2026-12-06-openapi-json-only.md
            render_plugins=[JsonRenderPlugin()],
            openapi_router=Router(
                "/schema",
                route_handlers=[],
                include_in_schema=False,
                after_request=schema_not_found,
            ),
        ),
        middleware=[
            valid_host_middleware,
            security_headers_middleware(content_security_policy(settings.tile_url)),
        ],
        request_max_body_size=MAX_BODY_BYTES,
        request_class=BoundedRequest,
        debug=False,
    )
