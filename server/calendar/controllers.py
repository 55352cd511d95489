"""The calendar feed (SPEC section 10): make, read the state of and revoke one's feed; the
feed itself, which calendar apps fetch without a bearer token."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from server.auth.dependencies import CurrentActor
from server.calendar import services
from server.calendar.schemas import FeedOut, FeedRequest, FeedStatus
from server.errors import ApiError

SECRET_MAX = 100


class CalendarController(Controller):
    path = "/api/calendar"
    tags = ["calendar"]

    @post("/feed", operation_id="make_calendar_feed", status_code=200)
    async def make(
        self, actor: CurrentActor, request: Request[Any, Any, Any], data: JSONBody[FeedRequest]
    ) -> FeedOut:
        """A new link to the caller's feed (any link made before stops working)."""
        return await services.make_feed(actor, data.private, str(request.base_url))

    @get("/feed", operation_id="calendar_feed_status")
    async def status(self, actor: CurrentActor) -> FeedStatus:
        """Whether the caller has a feed, and whether it is private."""
        return await services.feed_status(actor)

    @delete("/feed", operation_id="revoke_calendar_feed", status_code=204)
    async def revoke(self, actor: CurrentActor) -> None:
        """Revoke the caller's feed: its link answers 404 from now on."""
        await services.revoke_feed(actor)


class CalendarFeedController(Controller):
    """The feed, read with the secret in its link (no bearer token: calendar apps send none)."""

    path = "/api/calendar"
    tags = ["calendar"]

    @get("/{name:str}", operation_id="calendar_feed")
    async def feed(self, request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        """The user's open tasks as iCalendar events with their reminders as alarms."""
        secret = name.removesuffix(".ics")
        if secret == name or not 0 < len(secret) <= SECRET_MAX:
            raise ApiError(404, "not_found", "No calendar feed at this address.")
        document = await services.feed_document(secret, str(request.base_url))
        if document is None:
            raise ApiError(404, "not_found", "No calendar feed at this address (revoked?).")
        return Response(
            document,
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )
