"""The wire types of the team report and the team's devices (SPEC section 7)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

# Amounts are summed by currency; a deal with an amount and no currency counts under ISO
# 4217's "no currency" code.
NO_CURRENCY = "XXX"
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
STAGE_WEIGHTS = {"lead": 0.10, "qualified": 0.25, "proposal": 0.50, "negotiation": 0.75}
NOT_VISITED_DAYS = 30
NOT_VISITED_LIMIT = 500
MAX_DAYS = 731  # from..to: at most two years


class ReportQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A checked report request: the team, the calendar days [start, end] in `timezone`."""

    team_id: str
    start: date
    end: date
    timezone: str
    not_visited_days: int = NOT_VISITED_DAYS


class RepRow(msgspec.Struct, kw_only=True):
    user_id: str
    username: str
    role: str
    active: bool
    visits: int = 0
    verified_visits: int = 0
    accounts_visited: int = 0
    new_accounts: int = 0
    notes: int = 0
    tasks_done: int = 0
    deals_won: int = 0
    won_amount: dict[str, float] = msgspec.field(default_factory=dict)
    open_pipeline: dict[str, float] = msgspec.field(default_factory=dict)
    last_sync_at: datetime | None = None
    pending: int | None = None


class DayRow(msgspec.Struct, kw_only=True):
    date: date
    visits: int = 0
    verified_visits: int = 0


class StageRow(msgspec.Struct, kw_only=True):
    stage: str
    deals: int = 0
    amount: dict[str, float] = msgspec.field(default_factory=dict)
    weighted: dict[str, float] = msgspec.field(default_factory=dict)


class NotVisited(msgspec.Struct, kw_only=True):
    account_id: str
    name: str
    owner_id: str | None
    last_visit_at: datetime | None
    status: str
    lat: float | None
    lng: float | None


class TeamReport(msgspec.Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    team_id: str
    start: date
    end: date
    timezone: str
    reps: list[RepRow]
    days: list[DayRow]
    pipeline: list[StageRow]
    not_visited: list[NotVisited]
    complete_through: datetime | None
    # When the figures were computed (the server's time): `not_visited` counts back from it.
    generated_at: datetime
    not_visited_days: int


class Device(msgspec.Struct, kw_only=True):
    user_id: str
    username: str
    client_id: str
    last_sync_at: datetime | None
    pending: int | None
    oldest_pending_at: datetime | None
    app_version: str | None
    platform: str | None
    writes: int


class TeamDevices(msgspec.Struct, kw_only=True):
    team_id: str
    devices: list[Device]
