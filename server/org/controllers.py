"""`GET /api/org/rules` (anyone signed in) and `PATCH /api/org/rules` (admins): the
built-in rules and their switches (docs/automation.md)."""

from __future__ import annotations

from litestar import Controller, get, patch
from litestar.params import JSONBody

from server.auth.dependencies import CurrentActor
from server.org import services
from server.org.schemas import RuleChanges, Rules


class OrgRulesController(Controller):
    path = "/api/org/rules"
    tags = ["org"]

    @get("/", operation_id="org_rules")
    async def read(self, actor: CurrentActor) -> Rules:
        """Each built-in rule and whether it is on."""
        return await services.rules()

    @patch("/", operation_id="switch_org_rules")
    async def switch(self, actor: CurrentActor, data: JSONBody[RuleChanges]) -> Rules:
        """Turn built-in rules on or off (admins): `{"follow_up_task": false}`."""
        return await services.switch_rules(actor, data)
