"""The wire types of campaigns (docs/campaigns.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

MAX_ACCOUNTS = 2000  # accounts in one campaign
MAX_DAYS = 366  # from..to
MAX_POINTS = 200  # corners of a drawn area
LIST_LIMIT = 100  # campaigns listed


class Area(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An area drawn on the map: a rectangle by two opposite corners, or a polygon by its
    corners in order; each point `[lat, lng]`."""

    type: Literal["rectangle", "polygon"]
    points: list[tuple[float, float]]


class Filters(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    status: list[str] | None = None  # any of these statuses
    city: str | None = None  # the same city, case and accents aside
    not_visited_days: int | None = None  # last visit older than this many days, or never
    owner_id: str | None = None


class CampaignRequest(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    name: str = ""
    start: str = ""
    end: str = ""
    team_id: str | None = None
    area: Area | None = None
    filters: Filters = msgspec.field(default_factory=Filters)


class Progress(msgspec.Struct, kw_only=True):
    accounts: int = 0  # the campaign's accounts that still exist
    planned: int = 0  # of them, with a planned visit (a task not deleted)
    done: int = 0  # of those, the planned visit done
    visited: int = 0  # accounts visited since the campaign was made (by anyone)
    verified: int = 0  # of them, with a verified visit


class Skipped(msgspec.Struct, kw_only=True):
    account_id: str
    name: str
    reason: str  # no_owner | owner_inactive | owner_elsewhere


class CampaignSummary(msgspec.Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    id: str
    team_id: str
    name: str
    start: date
    end: date
    created_by: str | None
    created_at: datetime
    progress: Progress
    skipped: int = 0


class CampaignAccount(msgspec.Struct, kw_only=True):
    account_id: str
    name: str | None
    status: str | None
    lat: float | None
    lng: float | None
    owner_id: str | None
    task_id: str | None
    due_at: datetime | None
    planned: bool  # its planned visit still exists
    done: bool
    visited_at: datetime | None  # its first visit since the campaign was made
    verified: bool
    gone: bool = False  # the account was deleted or left the team since


class PlannedAccount(msgspec.Struct, kw_only=True):
    account_id: str
    name: str
    owner_id: str
    due_at: datetime
    task_id: str | None = None  # an open planned visit there already, kept (not doubled)


class CampaignDetail(msgspec.Struct, kw_only=True):
    campaign: CampaignSummary
    selection: dict[str, object]
    accounts: list[CampaignAccount]
    skipped: list[Skipped]


class CampaignPlan(msgspec.Struct, kw_only=True):
    """The answer to a dry run, or to a campaign made (`campaign` then set)."""

    dry_run: bool
    count: int  # accounts planned
    created: int  # planned visits made (the others were planned already)
    accounts: list[PlannedAccount]
    skipped: list[Skipped]
    campaign: CampaignSummary | None = None


class CampaignList(msgspec.Struct, kw_only=True):
    team_id: str
    campaigns: list[CampaignSummary]
