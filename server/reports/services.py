"""The team report and the team's devices (SPEC section 7), computed from the rows.

Every figure counts the team's live records (scope `team:<id>`, not deleted): exactly the
rows a manager of the team pulls, so a phone can compute the same numbers from what it
holds. Work is counted by when it happened, in the calendar days of FIELDCRM_TIMEZONE: a
day is the half-open range [its local midnight, the next one) in UTC, worked out here
(daylight saving time included), so both engines compare plain UTC times.
docs/reports.md says how each figure is computed.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from server import db
from server.core.actor import Actor, team_scope
from server.core.changelog.clients import devices_of, write_pending_reports
from server.core.rows import normalize, now_utc
from server.errors import ApiError
from server.reports.schemas import (
    MAX_DAYS,
    NO_CURRENCY,
    NOT_VISITED_DAYS,
    NOT_VISITED_LIMIT,
    OPEN_STAGES,
    STAGE_WEIGHTS,
    DayRow,
    Device,
    NotVisited,
    ReportQuery,
    RepRow,
    StageRow,
    TeamDevices,
    TeamReport,
)
from server.settings import Settings

_device_decoder = msgspec.json.Decoder(dict[str, Any])


# -- who may ask, and for what ------------------------------------------------------------


def require_manager(actor: Actor) -> None:
    if not actor.is_manager:
        raise ApiError(403, "forbidden", "Team reports are for managers and admins.")


async def team_for(actor: Actor, team_id: str | None) -> str:
    """The team a request is about: a manager's own (naming another answers 403), any team
    an admin names (404 if there is none), else the admin's own."""
    require_manager(actor)
    if team_id is None or team_id == "":
        return actor.team_id
    try:
        team = str(uuid.UUID(team_id))
    except ValueError:
        raise ApiError(400, "malformed", "team_id must be a team's UUID.") from None
    if not actor.is_admin:
        if team != actor.team_id:
            raise ApiError(403, "forbidden", "A manager sees the reports of their own team only.")
        return team
    if not await db.fetch("SELECT id FROM teams WHERE id = {}", team):
        raise ApiError(404, "not_found", "There is no team with this id.")
    return team


def parse_date(name: str, value: str | None) -> date:
    if value is None or value == "":
        raise ApiError(400, "malformed", f"Give {name}=YYYY-MM-DD.")
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "malformed", f"{name} must be a date, YYYY-MM-DD.") from None


async def parse_query(
    actor: Actor,
    settings: Settings,
    start: str | None,
    end: str | None,
    team_id: str | None,
    not_visited_days: str | None,
) -> ReportQuery:
    """A checked report request, or the 4xx saying what is wrong. Nothing is computed for
    a caller who may not see the team."""
    require_manager(actor)
    first, last = parse_date("from", start), parse_date("to", end)
    if first > last:
        raise ApiError(400, "malformed", "from must be on or before to.")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(400, "malformed", f"A report covers at most {MAX_DAYS} days (two years).")
    days = NOT_VISITED_DAYS
    if not_visited_days not in (None, ""):
        assert not_visited_days is not None
        if not not_visited_days.isdigit() or not 1 <= int(not_visited_days) <= 3650:
            raise ApiError(
                400, "malformed", "not_visited_days must be a whole number from 1 to 3650."
            )
        days = int(not_visited_days)
    team = await team_for(actor, team_id)
    return ReportQuery(
        team_id=team, start=first, end=last, timezone=settings.timezone, not_visited_days=days
    )


# -- the report ----------------------------------------------------------------------------


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """When `day` begins in `zone`, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def day_edges(query: ReportQuery) -> tuple[list[date], list[datetime]]:
    """The report's days, and the UTC time each begins, plus when the last one ends."""
    zone = ZoneInfo(query.timezone)
    days = [query.start + timedelta(days=n) for n in range((query.end - query.start).days + 1)]
    edges = [local_midnight(day, zone) for day in days]
    edges.append(local_midnight(query.end + timedelta(days=1), zone))
    return days, edges


async def team_report(query: ReportQuery) -> TeamReport:
    """The report, read in one snapshot."""
    await write_pending_reports()  # this process's pull-only syncs, so the report has them
    generated_at = now_utc()
    days, edges = day_edges(query)
    scope = team_scope(query.team_id)
    async with db.read_transaction():
        members = await _members(query.team_id)
        reps = {
            m["id"]: RepRow(
                user_id=m["id"], username=m["username"], role=m["role"], active=bool(m["active"])
            )
            for m in members
        }
        per_day = {day: DayRow(date=day) for day in days}
        await _visits(scope, query.team_id, days, edges, reps, per_day)
        await _counts(scope, query.team_id, edges[0], edges[-1], reps)
        await _won_deals(scope, query, edges[0], edges[-1], reps)
        pipeline = await _pipeline(scope, reps)
        not_visited = await _not_visited(
            scope, generated_at - timedelta(days=query.not_visited_days)
        )
        devices = await devices_of(list(reps))
    complete_through = _add_devices(reps, devices, {m["id"] for m in members if m["active"]})
    return TeamReport(
        team_id=query.team_id,
        start=query.start,
        end=query.end,
        timezone=query.timezone,
        reps=sorted(reps.values(), key=lambda rep: (rep.username, rep.user_id)),
        days=list(per_day.values()),
        pipeline=pipeline,
        not_visited=not_visited,
        complete_through=complete_through,
        generated_at=generated_at,
        not_visited_days=query.not_visited_days,
    )


async def _members(team_id: str) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT id, username, role, active FROM users WHERE team_id = {} ORDER BY username",
        team_id,
    )


def _days_table(days: Sequence[date], edges: Sequence[datetime]) -> tuple[str, list[Any]]:
    """A CTE `days(day, lo, hi)` of the report's days and their UTC bounds."""
    if db.is_postgres():
        sql = "days(day, lo, hi) AS (SELECT * FROM unnest({}::date[], {}::timestamptz[],"
        sql += " {}::timestamptz[]))"
        return sql, [list(days), list(edges[:-1]), list(edges[1:])]
    rows = ", ".join("({}, {}, {})" for _ in days)
    args = [value for n, day in enumerate(days) for value in (day, edges[n], edges[n + 1])]
    return f"days(day, lo, hi) AS (VALUES {rows})", args


async def _visits(
    scope: str,
    team_id: str,
    days: Sequence[date],
    edges: Sequence[datetime],
    reps: dict[str, RepRow],
    per_day: dict[date, DayRow],
) -> None:
    """Visits and verified visits per rep and per day (the days count the reps' visits, so
    they add up to the reps' rows), and each rep's distinct accounts visited. Each count is
    one range of visits_report (scope, user_id, started_at, ...): no sort, at any size."""
    table, args = _days_table(days, edges)
    in_day = (
        "FROM visits v WHERE v.scope = {} AND v.user_id = u.id AND v.started_at >= d.lo"
        " AND v.started_at < d.hi AND v.deleted = {}"
    )
    rows = await db.fetch(
        # MATERIALIZED: flattened, the filter would count each (rep, day) twice.
        f"WITH {table}, counts AS MATERIALIZED (SELECT u.id AS user_id, d.day AS day,"
        f" (SELECT COUNT(*) {in_day}) AS visits,"
        f" (SELECT COUNT(*) {in_day} AND v.verification = 'verified') AS verified"
        " FROM users u CROSS JOIN days d WHERE u.team_id = {})"
        " SELECT * FROM counts WHERE visits > 0",
        *args,
        scope,
        False,
        scope,
        False,
        team_id,
    )
    for row in rows:
        rep = reps.get(row["user_id"])
        if rep is None:
            continue
        day = per_day[_as_date(row["day"])]
        rep.visits += int(row["visits"])
        rep.verified_visits += int(row["verified"])
        day.visits += int(row["visits"])
        day.verified_visits += int(row["verified"])
    await _per_rep(
        "accounts_visited",
        "SELECT COUNT(DISTINCT v.account_id) FROM visits v WHERE v.scope = {}"
        " AND v.user_id = u.id AND v.started_at >= {} AND v.started_at < {} AND v.deleted = {}",
        [scope, edges[0], edges[-1], False],
        team_id,
        reps,
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


async def _per_rep(
    figure: str, count: str, args: list[Any], team_id: str, reps: dict[str, RepRow]
) -> None:
    """Set `figure` of each rep to `count`, a query of one number for the rep `u`."""
    rows = await db.fetch(
        f"SELECT u.id AS user_id, ({count}) AS n FROM users u WHERE u.team_id = {{}}",
        *args,
        team_id,
    )
    for row in rows:
        rep = reps.get(row["user_id"])
        if rep is not None:
            setattr(rep, figure, int(row["n"] or 0))


async def _counts(
    scope: str, team_id: str, lo: datetime, hi: datetime, reps: dict[str, RepRow]
) -> None:
    """Accounts each rep created, notes they wrote and their tasks done, in the range: each
    one index range per rep."""
    queries = {
        "new_accounts": "SELECT COUNT(*) FROM accounts a WHERE a.scope = {}"
        " AND a.created_by = u.id AND a.created_at >= {} AND a.created_at < {}"
        " AND a.deleted = {}",
        "notes": "SELECT COUNT(*) FROM notes n WHERE n.scope = {} AND n.author_id = u.id"
        " AND n.created_at >= {} AND n.created_at < {} AND n.deleted = {}",
        "tasks_done": "SELECT COUNT(*) FROM tasks t WHERE t.scope = {} AND t.assignee_id = u.id"
        " AND t.done_at >= {} AND t.done_at < {} AND t.deleted = {} AND t.done = {}",
    }
    for figure, sql in queries.items():
        args: list[Any] = [scope, lo, hi, False]
        if figure == "tasks_done":
            args.append(True)
        await _per_rep(figure, sql, args, team_id, reps)


async def _won_deals(
    scope: str, query: ReportQuery, lo: datetime, hi: datetime, reps: dict[str, RepRow]
) -> None:
    """Deals each rep owns in stage `won` whose close_date (or, without one,
    stage_changed_at) is in the range, with their amounts by currency."""
    rows = await db.fetch(
        "SELECT owner_id, currency, COUNT(*) AS deals, SUM(amount) AS amount FROM deals"
        " WHERE scope = {} AND stage = {} AND deleted = {}"
        " AND ((close_date >= {} AND close_date <= {})"
        " OR (close_date IS NULL AND stage_changed_at >= {} AND stage_changed_at < {}))"
        " GROUP BY owner_id, currency",
        scope,
        "won",
        False,
        query.start,
        query.end,
        lo,
        hi,
    )
    for row in rows:
        rep = reps.get(row["owner_id"])
        if rep is None:
            continue
        rep.deals_won += int(row["deals"])
        _add(rep.won_amount, row["currency"], row["amount"])
    for rep in reps.values():
        rep.won_amount = _rounded(rep.won_amount)


async def _pipeline(scope: str, reps: dict[str, RepRow]) -> list[StageRow]:
    """The team's open deals by stage, with their weighted forecast, and each rep's open
    deals by currency."""
    stages = {stage: StageRow(stage=stage) for stage in OPEN_STAGES}
    where, args = db.any_of("stage", list(OPEN_STAGES))
    rows = await db.fetch(
        "SELECT owner_id, stage, currency, COUNT(*) AS deals, SUM(amount) AS amount"
        f" FROM deals WHERE scope = {{}} AND deleted = {{}} AND {where}"
        " GROUP BY owner_id, stage, currency",
        scope,
        False,
        *args,
    )
    for row in rows:
        stage = stages[row["stage"]]
        stage.deals += int(row["deals"])
        _add(stage.amount, row["currency"], row["amount"])
        rep = reps.get(row["owner_id"])
        if rep is not None:
            _add(rep.open_pipeline, row["currency"], row["amount"])
    for rep in reps.values():
        rep.open_pipeline = _rounded(rep.open_pipeline)
    for stage in stages.values():
        weight = STAGE_WEIGHTS[stage.stage]
        stage.weighted = _rounded({c: amount * weight for c, amount in stage.amount.items()})
        stage.amount = _rounded(stage.amount)
    return list(stages.values())


def _add(sums: dict[str, float], currency: str | None, amount: float | None) -> None:
    """Add a sum of amounts (None: the deals had none) under its currency."""
    if amount is None:
        return
    key = currency or NO_CURRENCY
    sums[key] = sums.get(key, 0.0) + float(amount)


def _rounded(sums: dict[str, float]) -> dict[str, float]:
    """Sums to the cent, by currency code."""
    return {currency: round(sums[currency], 2) for currency in sorted(sums)}


async def _not_visited(scope: str, cutoff: datetime) -> list[NotVisited]:
    """The team's accounts never visited, then those last visited before `cutoff`, oldest
    first, at most NOT_VISITED_LIMIT (two queries, each served by an index in order)."""
    columns = "id, name, owner_id, last_visit_at, status, lat, lng"
    rows = await db.fetch(
        f"SELECT {columns} FROM accounts WHERE scope = {{}} AND last_visit_at IS NULL"
        " AND deleted = {} ORDER BY name, id LIMIT {}",
        scope,
        False,
        NOT_VISITED_LIMIT,
    )
    if len(rows) < NOT_VISITED_LIMIT:
        rows += await db.fetch(
            f"SELECT {columns} FROM accounts WHERE scope = {{}} AND last_visit_at < {{}}"
            " AND deleted = {} ORDER BY last_visit_at, name, id LIMIT {}",
            scope,
            cutoff,
            False,
            NOT_VISITED_LIMIT - len(rows),
        )
    return [
        NotVisited(
            account_id=str(row["id"]),
            name=row["name"],
            owner_id=row["owner_id"],
            last_visit_at=normalize(row["last_visit_at"]),
            status=row["status"],
            lat=row["lat"],
            lng=row["lng"],
        )
        for row in rows
    ]


# -- devices -------------------------------------------------------------------------------


def _device(row: dict[str, Any], username: str) -> Device:
    report = _device_decoder.decode(row["device"]) if row["device"] else {}
    oldest = report.get("oldest_pending_at")
    last_sync = row["last_sync_ms"]
    return Device(
        user_id=row["user_id"],
        username=username,
        client_id=row["client_id"],
        last_sync_at=None if last_sync is None else _from_ms(int(last_sync)),
        pending=report.get("pending"),
        oldest_pending_at=datetime.fromisoformat(oldest) if oldest else None,
        app_version=report.get("app_version"),
        platform=report.get("platform"),
        writes=int(row["writes"]),
    )


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _add_devices(
    reps: dict[str, RepRow], rows: Iterable[dict[str, Any]], active: set[str]
) -> datetime | None:
    """Each rep's latest sync and the most writes any of their devices holds; the oldest
    last sync of the active reps' devices (the report is complete up to then)."""
    oldest: datetime | None = None
    for row in rows:
        rep = reps[row["user_id"]]
        device = _device(row, rep.username)
        if device.last_sync_at is not None:
            if rep.last_sync_at is None or device.last_sync_at > rep.last_sync_at:
                rep.last_sync_at = device.last_sync_at
            if rep.user_id in active and (oldest is None or device.last_sync_at < oldest):
                oldest = device.last_sync_at
        if device.pending is not None:
            rep.pending = max(rep.pending or 0, device.pending)
    return oldest


async def team_devices(team_id: str) -> TeamDevices:
    """Every device of the team's users with its last report, latest sync first."""
    await write_pending_reports()
    async with db.read_transaction():
        members = await _members(team_id)
        names = {m["id"]: m["username"] for m in members}
        rows = await devices_of(list(names))
    devices = [_device(row, names[row["user_id"]]) for row in rows]
    never = datetime.min.replace(tzinfo=UTC)
    devices.sort(key=lambda d: (d.username, -(d.last_sync_at or never).timestamp(), d.client_id))
    return TeamDevices(team_id=team_id, devices=devices)


# -- CSV -----------------------------------------------------------------------------------

CSV_FIGURES = (
    "visits",
    "verified_visits",
    "accounts_visited",
    "new_accounts",
    "notes",
    "tasks_done",
    "deals_won",
)


def report_csv(report: TeamReport) -> str:
    """The reps' rows as CSV: one column per figure, one per currency for the amounts
    (`won_amount_EUR`, `open_pipeline_EUR`), times in ISO 8601 UTC."""
    currencies = {
        name: sorted({c for rep in report.reps for c in getattr(rep, name)})
        for name in ("won_amount", "open_pipeline")
    }
    header = ["user_id", "username", "role", "active", *CSV_FIGURES]
    for name, codes in currencies.items():
        header += [f"{name}_{code}" for code in codes]
    header += ["last_sync_at", "pending"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for rep in report.reps:
        row: list[Any] = [rep.user_id, _cell(rep.username), rep.role, str(rep.active).lower()]
        row += [getattr(rep, figure) for figure in CSV_FIGURES]
        for name, codes in currencies.items():
            sums = getattr(rep, name)
            row += [sums.get(code, 0.0) for code in codes]
        last_sync = rep.last_sync_at.isoformat().replace("+00:00", "Z") if rep.last_sync_at else ""
        row += [last_sync, "" if rep.pending is None else rep.pending]
        writer.writerow(row)
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet would not run as a formula (OWASP's CSV injection advice)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
