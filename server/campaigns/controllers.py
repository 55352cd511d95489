"""`POST /api/campaigns`, `GET /api/campaigns` and `GET /api/campaigns/{id}`
(docs/campaigns.md): managers for their own team, admins for any (`team_id`); reps 403."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from server.auth.dependencies import CurrentActor
from server.campaigns import services
from server.campaigns.schemas import CampaignDetail, CampaignList, CampaignPlan, CampaignRequest
from server.errors import ApiError
from server.settings import Settings

Param = Annotated[str | None, QueryParameter(max_length=40)]


def _flag(value: str | None) -> bool:
    if value is None or value.lower() in ("false", "0", "no", ""):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise ApiError(400, "malformed", "dry_run must be true or false.")


class CampaignsController(Controller):
    path = "/api/campaigns"
    tags = ["campaigns"]

    @post("/", operation_id="create_campaign")
    async def create(
        self,
        actor: CurrentActor,
        settings: NamedDependency[Settings],
        data: JSONBody[CampaignRequest],
        dry_run: Param = None,
    ) -> Response[CampaignPlan]:
        """Plan a visit for each account of the team in an area and filters, for its owner,
        over the working days of a period (201); `?dry_run=true` answers the plan and
        writes nothing (200)."""
        trial = _flag(dry_run)
        checked = await services.check(actor, settings.timezone, data, trial)
        plan = await services.plan(actor, settings.timezone, checked, trial)
        return Response(plan, status_code=200 if trial else 201)

    @get("/", operation_id="list_campaigns")
    async def list_(
        self, actor: CurrentActor, settings: NamedDependency[Settings], team_id: Param = None
    ) -> CampaignList:
        """The team's campaigns, newest first, with their progress."""
        return await services.list_campaigns(actor, settings.timezone, team_id)

    @get("/{campaign_id:str}", operation_id="get_campaign")
    async def read(
        self, actor: CurrentActor, settings: NamedDependency[Settings], campaign_id: FromPath[str]
    ) -> CampaignDetail:
        """A campaign: its accounts, each one's planned visit and whether it was visited."""
        return await services.campaign_detail(actor, settings.timezone, campaign_id)
