"""Reading and switching the built-in rules (server/core/automation.py)."""

from __future__ import annotations

import msgspec

from server.core import automation
from server.core.actor import Actor
from server.errors import ApiError
from server.org.schemas import RuleChanges, Rules, RuleSwitches


async def rules() -> Rules:
    return Rules(rules=RuleSwitches(**await automation.rule_switches()))


async def switch_rules(actor: Actor, changes: RuleChanges) -> Rules:
    if not actor.is_admin:
        raise ApiError(403, "forbidden", "Only an admin turns the built-in rules on or off.")
    given = {
        name: value
        for name, value in msgspec.structs.asdict(changes).items()
        if value is not msgspec.UNSET
    }
    if not given:
        raise ApiError(
            422, "invalid", f"Name a rule to switch: {', '.join(automation.RULE_NAMES)}."
        )
    switches = await automation.set_rule_switches(given, actor.user_id)
    return Rules(rules=RuleSwitches(**switches))
