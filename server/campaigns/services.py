"""Campaigns (docs/campaigns.md): the accounts of a team in an area and filters, a planned
visit (a task of kind `visit`) for each account's owner, spread over the working days of a
period, written through the one writer; and how far each campaign got.

Days are calendar days in FIELDCRM_TIMEZONE; working days are Monday to Friday. Each
owner's visits are spread evenly over the period's working days, in an order in which each
account is near the next (a Hilbert curve over their positions), so a day's visits lie
close together; within a day they are due from 09:00, spaced over eight hours.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from server import db
from server.campaigns import area
from server.campaigns.schemas import (
    LIST_LIMIT,
    MAX_ACCOUNTS,
    MAX_DAYS,
    MAX_POINTS,
    CampaignAccount,
    CampaignDetail,
    CampaignList,
    CampaignPlan,
    CampaignRequest,
    CampaignSummary,
    Filters,
    PlannedAccount,
    Progress,
    Skipped,
)
from server.core.actor import Actor, team_scope
from server.core.fields import ACCOUNT_STATUSES
from server.core.rows import chunks, normalize
from server.core.writer import Edit, Source, writing
from server.errors import ApiError
from sync.protocol import Rejected

BATCH = 250  # planned visits written per transaction
DAY_STARTS = time(9, 0)
DAY_MINUTES = 8 * 60
_json = msgspec.json.Encoder()
_selection = msgspec.json.Decoder(dict[str, Any])
_skipped = msgspec.json.Decoder(list[Skipped])


def _bad(detail: str) -> ApiError:
    return ApiError(400, "malformed", detail)


def _invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid", detail)


# -- who may ask -----------------------------------------------------------------------------


def require_manager(actor: Actor) -> None:
    if not actor.is_manager:
        raise ApiError(403, "forbidden", "Campaigns are for managers and admins.")


async def team_for(actor: Actor, team_id: str | None) -> str:
    """A manager's own team (naming another answers 403); any team an admin names (404 if
    there is none), else the admin's own."""
    require_manager(actor)
    if not team_id:
        return actor.team_id
    try:
        team = str(uuid.UUID(team_id))
    except ValueError:
        raise _bad("team_id must be a team's UUID.") from None
    if not actor.is_admin:
        if team != actor.team_id:
            raise ApiError(403, "forbidden", "A manager plans campaigns for their own team only.")
        return team
    if not await db.fetch("SELECT id FROM teams WHERE id = {}", team):
        raise ApiError(404, "not_found", "There is no team with this id.")
    return team


# -- the request -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    team_id: str
    name: str
    start: date
    end: date
    polygon: list[area.Point] | None
    filters: Filters


def _date(name: str, value: str) -> date:
    if not value:
        raise _bad(f"Give {name}=YYYY-MM-DD.")
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(f"{name} must be a date, YYYY-MM-DD.") from None


def _polygon(request: CampaignRequest) -> list[area.Point] | None:
    given = request.area
    if given is None:
        return None
    points = given.points
    if given.type == "rectangle" and len(points) != 2:
        raise _invalid("A rectangle is given by two opposite corners, [[lat, lng], [lat, lng]].")
    if given.type == "polygon" and not 3 <= len(points) <= MAX_POINTS:
        raise _invalid(f"A polygon has from 3 to {MAX_POINTS} corners, each [lat, lng].")
    for lat, lng in points:
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise _invalid("A corner's lat is in [-90, 90] and its lng in [-180, 180].")
    polygon = area.corners(given.type, points)
    south, west, north, east = area.bounds(polygon)
    if south == north or west == east:
        raise _invalid("The area drawn has no surface: draw it again.")
    return polygon


async def _filters(filters: Filters, team_id: str) -> Filters:
    statuses = filters.status
    if statuses is not None:
        unknown = [s for s in statuses if s not in ACCOUNT_STATUSES]
        if unknown or not statuses:
            raise _invalid(f"filters.status lists some of {', '.join(ACCOUNT_STATUSES)}.")
    city = (filters.city or "").strip() or None
    if city is not None and len(city) > 100:
        raise _invalid("filters.city is at most 100 characters.")
    days = filters.not_visited_days
    if days is not None and not 1 <= days <= 3650:
        raise _invalid("filters.not_visited_days is a whole number from 1 to 3650.")
    owner = filters.owner_id
    if owner is not None:
        try:
            owner = str(uuid.UUID(owner))
        except ValueError:
            raise _invalid("filters.owner_id must be a user's UUID.") from None
        rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", owner)
        if not rows or str(rows[0]["team_id"]) != team_id:
            raise _invalid("filters.owner_id names nobody in the campaign's team.")
    return Filters(status=statuses, city=city, not_visited_days=days, owner_id=owner)


async def check(actor: Actor, timezone: str, request: CampaignRequest, dry_run: bool) -> Checked:
    """A checked campaign request, or the 4xx saying what is wrong (a caller who may not
    plan for the team learns nothing else)."""
    team_id = await team_for(actor, request.team_id)
    name = request.name.strip()
    if not dry_run and not name:
        raise _invalid("Name the campaign.")
    if len(name) > 200:
        raise _invalid("A campaign's name is at most 200 characters.")
    start, end = _date("from", request.start), _date("to", request.end)
    if start > end:
        raise _bad("from must be on or before to.")
    if (end - start).days + 1 > MAX_DAYS:
        raise _invalid(f"A campaign runs at most {MAX_DAYS} days.")
    today = datetime.now(ZoneInfo(timezone)).date()
    if start < today:
        raise _invalid(f"A campaign starts today ({today.isoformat()}) or later.")
    if not working_days(start, end):
        raise _invalid("The period has no working day (Monday to Friday).")
    polygon = _polygon(request)
    filters = await _filters(request.filters, team_id)
    return Checked(team_id, name, start, end, polygon, filters)


# -- choosing the accounts -------------------------------------------------------------------


def folded(text: str | None) -> str:
    """Text with case, accents and surrounding spaces set aside."""
    decomposed = unicodedata.normalize("NFKD", (text or "").strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def matches(account: dict[str, Any], checked: Checked, cutoff: datetime) -> bool:
    """Whether an account is one the request picks (the SQL has already filtered on most)."""
    filters = checked.filters
    if filters.status is not None and account["status"] not in filters.status:
        return False
    if filters.owner_id is not None and account["owner_id"] != filters.owner_id:
        return False
    if filters.not_visited_days is not None:
        last = account["last_visit_at"]
        if last is not None and normalize(last) >= cutoff:
            return False
    if filters.city is not None and folded(account["city"]) != folded(filters.city):
        return False
    if checked.polygon is not None:
        lat, lng = account["lat"], account["lng"]
        if lat is None or lng is None or not area.contains(checked.polygon, lat, lng):
            return False
    return True


async def select_accounts(checked: Checked) -> list[dict[str, Any]]:
    """The team's live accounts in the area and filters, by name."""
    filters = checked.filters
    where = ["scope = {}", "deleted = {}"]
    args: list[Any] = [team_scope(checked.team_id), False]
    if filters.owner_id is not None:
        where.append("owner_id = {}")
        args.append(filters.owner_id)
    cutoff = datetime.now(UTC) - timedelta(days=filters.not_visited_days or 0)
    if filters.not_visited_days is not None:
        where.append("(last_visit_at IS NULL OR last_visit_at < {})")
        args.append(cutoff)
    if checked.polygon is not None:
        south, west, north, east = area.bounds(checked.polygon)
        where.append("lat >= {} AND lat <= {} AND lng >= {} AND lng <= {}")
        args += [south, north, west, east]
    rows = await db.fetch(
        "SELECT id, name, status, city, lat, lng, owner_id, last_visit_at FROM accounts"
        f" WHERE {' AND '.join(where)} ORDER BY name, id",
        *args,
        slow=True,
    )
    chosen = [r for r in rows if matches(r, checked, cutoff)]
    if len(chosen) > MAX_ACCOUNTS:
        raise _invalid(
            f"{len(chosen):,} accounts are in this area and filters; a campaign holds at most"
            f" {MAX_ACCOUNTS:,}. Draw a smaller area or narrow the filters."
        )
    return chosen


# -- planning ----------------------------------------------------------------------------------


def working_days(start: date, end: date) -> list[date]:
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [day for day in days if day.weekday() < 5]


def schedule(
    accounts: list[dict[str, Any]], days: list[date], zone: ZoneInfo
) -> dict[str, datetime]:
    """When each account's visit is due (UTC): each owner's accounts, in an order where
    each is near the next, spread evenly over the working days; within a day from 09:00,
    spaced over eight hours."""
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for account in accounts:
        by_owner[account["owner_id"]].append(account)
    due: dict[str, datetime] = {}
    for group in by_owner.values():
        points = [
            (a["lat"], a["lng"]) if a["lat"] is not None and a["lng"] is not None else None
            for a in group
        ]
        ordered = [group[i] for i in area.hilbert_order(points)]
        per_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for n, account in enumerate(ordered):
            per_day[n * len(days) // len(ordered)].append(account)
        for index, on_day in per_day.items():
            for k, account in enumerate(on_day):
                start = datetime.combine(days[index], DAY_STARTS, tzinfo=zone)
                at = start + timedelta(minutes=k * DAY_MINUTES // len(on_day))
                due[str(account["id"])] = at.astimezone(UTC)
    return due


async def _owners(accounts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = sorted({str(a["owner_id"]) for a in accounts if a["owner_id"] is not None})
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(ids, 500):
        where, args = db.any_of("id", part)
        for row in await db.fetch(f"SELECT id, team_id, active FROM users WHERE {where}", *args):
            found[str(row["id"])] = row
    return found


async def _planned_already(
    accounts: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    """Per account, an open planned visit of its owner due in the period."""
    owner_of = {str(a["id"]): str(a["owner_id"]) for a in accounts}
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(owner_of), 500):
        where, args = db.any_of("account_id", part)
        rows = await db.fetch(
            f"SELECT id, account_id, assignee_id, due_at FROM tasks WHERE {where}"
            " AND kind = {} AND done = {} AND deleted = {} AND due_at >= {} AND due_at < {}"
            " ORDER BY due_at, id",
            *args,
            "visit",
            False,
            False,
            start,
            end,
        )
        for row in rows:
            account_id = str(row["account_id"])
            if owner_of.get(account_id) == str(row["assignee_id"]) and account_id not in found:
                found[account_id] = row
    return found


async def plan(actor: Actor, timezone: str, checked: Checked, dry_run: bool) -> CampaignPlan:
    """Choose the accounts, and (unless a dry run) write their planned visits and the
    campaign. Answers what was planned and what was left out, and why."""
    zone = ZoneInfo(timezone)
    chosen = await select_accounts(checked)
    if not chosen:
        raise _invalid("No account of the team is in this area with these filters.")
    owners = await _owners(chosen)
    skipped: list[Skipped] = []
    plannable = []
    for account in chosen:
        owner = owners.get(str(account["owner_id"])) if account["owner_id"] else None
        reason = None
        if owner is None:
            reason = "no_owner"
        elif str(owner["team_id"]) != checked.team_id:
            reason = "owner_elsewhere"
        elif not owner["active"]:
            reason = "owner_inactive"
        if reason:
            skipped.append(
                Skipped(account_id=str(account["id"]), name=account["name"], reason=reason)
            )
        else:
            plannable.append(account)
    if not plannable:
        raise _invalid(
            "None of the chosen accounts has an active owner in the team to visit it;"
            " reassign them first."
        )
    start_utc = datetime.combine(checked.start, time(), tzinfo=zone).astimezone(UTC)
    end_utc = datetime.combine(checked.end + timedelta(days=1), time(), tzinfo=zone)
    already = await _planned_already(plannable, start_utc, end_utc.astimezone(UTC))
    fresh = [a for a in plannable if str(a["id"]) not in already]
    due = schedule(fresh, working_days(checked.start, checked.end), zone)
    planned = [
        PlannedAccount(
            account_id=str(a["id"]),
            name=a["name"],
            owner_id=str(a["owner_id"]),
            due_at=normalize(already[str(a["id"])]["due_at"]) if str(a["id"]) in already
            else due[str(a["id"])],
            task_id=str(already[str(a["id"])]["id"]) if str(a["id"]) in already else None,
        )
        for a in plannable
    ]  # fmt: skip
    if dry_run:
        return CampaignPlan(
            dry_run=True, count=len(planned), created=len(fresh), accounts=planned, skipped=skipped
        )
    campaign_id = str(uuid.uuid4())
    created = await _write(actor, campaign_id, checked, planned, skipped)
    summary = (await _summaries([await _campaign_row(campaign_id)], timezone))[0]
    return CampaignPlan(
        dry_run=False,
        count=len(planned),
        created=created,
        accounts=planned,
        skipped=skipped,
        campaign=summary,
    )


def _selection_of(checked: Checked) -> dict[str, Any]:
    return {
        "area": [list(p) for p in checked.polygon] if checked.polygon is not None else None,
        "filters": msgspec.to_builtins(checked.filters),
    }


async def _write(
    actor: Actor,
    campaign_id: str,
    checked: Checked,
    planned: list[PlannedAccount],
    skipped: list[Skipped],
) -> int:
    """The campaign, then its planned visits in batches (one transaction each, with their
    campaign_accounts rows). A visit the writer refuses (its account deleted meanwhile) is
    left out and listed."""
    created = 0
    refused: list[Skipped] = []
    title = f"Visit ({checked.name})"[:200]
    for n, batch in enumerate(chunks(planned, BATCH)):
        async with writing(Source.CAMPAIGN) as writer:
            if n == 0:
                await db.fetch(
                    "INSERT INTO campaigns (id, team_id, name, starts_on, ends_on, created_by,"
                    " created_at, selection, accounts, skipped)"
                    " VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                    campaign_id,
                    checked.team_id,
                    checked.name,
                    checked.start,
                    checked.end,
                    actor.user_id or None,
                    datetime.now(UTC),
                    _json.encode(_selection_of(checked)).decode(),
                    len(planned),
                    _json.encode(skipped).decode(),
                )
            edits = {
                item.account_id: Edit(
                    "tasks",
                    str(uuid.uuid4()),
                    {
                        "title": title,
                        "kind": "visit",
                        "account_id": item.account_id,
                        "assignee_id": item.owner_id,
                        "due_at": item.due_at.isoformat(),
                    },
                )
                for item in batch
                if item.task_id is None
            }
            await writer.prefetch(list(edits.values()))
            items = []
            for item in batch:
                task_id = item.task_id
                if task_id is None:
                    edit = edits[item.account_id]
                    task_id = edit.id
                    try:
                        await writer.apply(actor, edit)
                    except Rejected:
                        refused.append(
                            Skipped(account_id=item.account_id, name=item.name, reason="refused")
                        )
                        continue
                    item.task_id = task_id
                    created += 1
                items.append([campaign_id, item.account_id, task_id, item.owner_id, item.due_at])
            await db.insert_rows(
                "campaign_accounts",
                ("campaign_id", "account_id", "task_id", "owner_id", "due_at"),
                items,
            )
    if refused:
        await db.fetch(
            "UPDATE campaigns SET accounts = {}, skipped = {} WHERE id = {}",
            len(planned) - len(refused),
            _json.encode([*skipped, *refused]).decode(),
            campaign_id,
        )
        skipped += refused
        planned[:] = [p for p in planned if p.task_id is not None]
    return created


# -- reading campaigns and their progress -----------------------------------------------------


async def _campaign_row(campaign_id: str) -> dict[str, Any]:
    rows = await db.fetch("SELECT * FROM campaigns WHERE id = {}", campaign_id)
    return rows[0]


def _counted_from(row: dict[str, Any], zone: ZoneInfo) -> datetime:
    """Visits count from when the campaign was made, or from its first day's midnight when
    it starts the day it was made (a visit that morning counts)."""
    starts: date = row["starts_on"]
    if isinstance(starts, str):
        starts = date.fromisoformat(starts)
    first_day = datetime.combine(starts, time(), tzinfo=zone).astimezone(UTC)
    created: datetime = normalize(row["created_at"])
    return min(first_day, created)


async def _accounts_of(row: dict[str, Any], zone: ZoneInfo) -> list[CampaignAccount]:
    """The campaign's accounts as they are now: the planned visit, the first visit since
    the campaign began (by anyone), whether one was verified."""
    campaign_id = str(row["id"])
    items = await db.fetch(
        "SELECT ca.account_id, ca.task_id, ca.owner_id, ca.due_at, a.name, a.status, a.lat,"
        " a.lng, a.deleted AS account_deleted, a.scope, t.deleted AS task_deleted,"
        " t.done, t.due_at AS task_due_at FROM campaign_accounts ca"
        " LEFT JOIN accounts a ON a.id = ca.account_id"
        " LEFT JOIN tasks t ON t.id = ca.task_id"
        " WHERE ca.campaign_id = {} ORDER BY a.name, ca.account_id",
        campaign_id,
    )
    visits = await db.fetch(
        "SELECT v.account_id, MIN(v.started_at) AS first_at,"
        " MAX(CASE WHEN v.verification = {} THEN 1 ELSE 0 END) AS verified"
        " FROM visits v JOIN campaign_accounts ca ON ca.account_id = v.account_id"
        " WHERE ca.campaign_id = {} AND v.deleted = {} AND v.started_at >= {}"
        " GROUP BY v.account_id",
        "verified",
        campaign_id,
        False,
        _counted_from(row, zone),
    )
    visited = {str(v["account_id"]): v for v in visits}
    scope = team_scope(str(row["team_id"]))
    accounts = []
    for item in items:
        account_id = str(item["account_id"])
        seen = visited.get(account_id)
        gone = item["name"] is None or bool(item["account_deleted"]) or item["scope"] != scope
        planned = item["task_deleted"] is not None and not item["task_deleted"]
        accounts.append(
            CampaignAccount(
                account_id=account_id,
                name=item["name"],
                status=item["status"],
                lat=item["lat"],
                lng=item["lng"],
                owner_id=str(item["owner_id"]) if item["owner_id"] else None,
                task_id=str(item["task_id"]) if item["task_id"] else None,
                due_at=normalize(item["task_due_at"] or item["due_at"]),
                planned=planned,
                done=planned and bool(item["done"]),
                visited_at=normalize(seen["first_at"]) if seen else None,
                verified=bool(seen and seen["verified"]),
                gone=gone,
            )
        )
    return accounts


def progress_of(accounts: list[CampaignAccount]) -> Progress:
    here = [a for a in accounts if not a.gone]
    return Progress(
        accounts=len(here),
        planned=sum(a.planned for a in here),
        done=sum(a.done for a in here),
        visited=sum(a.visited_at is not None for a in here),
        verified=sum(a.verified for a in here),
    )


def _summary(row: dict[str, Any], progress: Progress) -> CampaignSummary:
    def day(value: Any) -> date:
        return date.fromisoformat(value) if isinstance(value, str) else value

    return CampaignSummary(
        id=str(row["id"]),
        team_id=str(row["team_id"]),
        name=row["name"],
        start=day(row["starts_on"]),
        end=day(row["ends_on"]),
        created_by=str(row["created_by"]) if row["created_by"] else None,
        created_at=normalize(row["created_at"]),
        progress=progress,
        skipped=len(_skipped.decode(row["skipped"] or "[]")),
    )


async def _summaries(rows: list[dict[str, Any]], timezone: str) -> list[CampaignSummary]:
    zone = ZoneInfo(timezone)
    return [_summary(row, progress_of(await _accounts_of(row, zone))) for row in rows]


async def list_campaigns(actor: Actor, timezone: str, team_id: str | None) -> CampaignList:
    """The team's campaigns, newest first, with their progress."""
    team = await team_for(actor, team_id)
    async with db.read_transaction():
        rows = await db.fetch(
            "SELECT * FROM campaigns WHERE team_id = {} ORDER BY created_at DESC, id LIMIT {}",
            team,
            LIST_LIMIT,
        )
        campaigns = await _summaries(rows, timezone)
    return CampaignList(team_id=team, campaigns=campaigns)


async def campaign_detail(actor: Actor, timezone: str, campaign_id: str) -> CampaignDetail:
    """One campaign, its accounts and their progress: the managers of its team, admins."""
    require_manager(actor)
    try:
        campaign_id = str(uuid.UUID(campaign_id))
    except ValueError:
        raise ApiError(404, "not_found", "There is no campaign with this id.") from None
    async with db.read_transaction():
        rows = await db.fetch("SELECT * FROM campaigns WHERE id = {}", campaign_id)
        if not rows or not (actor.is_admin or str(rows[0]["team_id"]) == actor.team_id):
            raise ApiError(404, "not_found", "There is no campaign with this id.")
        row = rows[0]
        accounts = await _accounts_of(row, ZoneInfo(timezone))
    return CampaignDetail(
        campaign=_summary(row, progress_of(accounts)),
        selection=_selection.decode(row["selection"] or "{}"),
        accounts=accounts,
        skipped=_skipped.decode(row["skipped"] or "[]"),
    )
