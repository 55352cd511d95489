"""The wire types of the organisation's settings."""

from __future__ import annotations

import msgspec


class RuleSwitches(msgspec.Struct, kw_only=True):
    """Each built-in rule (server/core/automation.py) and whether it is on."""

    won_deal_makes_customer: bool = True
    follow_up_task: bool = True


class RuleChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The rules to turn on or off; a rule not named keeps its switch."""

    won_deal_makes_customer: bool | msgspec.UnsetType = msgspec.UNSET
    follow_up_task: bool | msgspec.UnsetType = msgspec.UNSET


class Rules(msgspec.Struct, kw_only=True):
    rules: RuleSwitches
