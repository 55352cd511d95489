"""`GET /api/reports/team`, `GET /api/reports/team.csv` and `GET /api/team/devices`
(SPEC section 7): managers their own team, admins any team (`team_id=`), reps 403."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from server.auth.dependencies import CurrentActor
from server.reports import services
from server.reports.schemas import TeamDevices, TeamReport
from server.settings import Settings

# Read as text and checked by the service, so that every bad value gets the same clear 400.
Param = Annotated[str | None, QueryParameter(max_length=40)]
FromParam = Annotated[str | None, QueryParameter(name="from", max_length=40)]


class ReportsController(Controller):
    path = "/api/reports"
    tags = ["reports"]

    @get("/team", operation_id="team_report")
    async def team(
        self,
        actor: CurrentActor,
        settings: NamedDependency[Settings],
        from_: FromParam = None,
        to: Param = None,
        team_id: Param = None,
        not_visited_days: Param = None,
    ) -> TeamReport:
        """What each rep of the team did from `from` to `to` (calendar days in the
        organisation's time zone), the pipeline, the accounts not visited lately, and how
        complete the figures are (the devices' last syncs)."""
        query = await services.parse_query(actor, settings, from_, to, team_id, not_visited_days)
        return await services.team_report(query)

    @get("/team.csv", operation_id="team_report_csv")
    async def team_csv(
        self,
        actor: CurrentActor,
        settings: NamedDependency[Settings],
        from_: FromParam = None,
        to: Param = None,
        team_id: Param = None,
        not_visited_days: Param = None,
    ) -> Response[str]:
        """The reps' rows of the team report, as CSV."""
        query = await services.parse_query(actor, settings, from_, to, team_id, not_visited_days)
        report = await services.team_report(query)
        name = f"team-report-{query.start}-{query.end}.csv"
        return Response(
            services.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


class TeamController(Controller):
    path = "/api/team"
    tags = ["reports"]

    @get("/devices", operation_id="team_devices")
    async def devices(self, actor: CurrentActor, team_id: Param = None) -> TeamDevices:
        """Each device of the team's users: its last sync, what it last said it still
        holds unsent, its app version and platform, and how many of its writes the server
        applied."""
        team = await services.team_for(actor, team_id)
        return await services.team_devices(team)
