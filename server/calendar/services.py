"""The calendar feed of SPEC section 10.

A feed is the user's open tasks with a due date from 30 days ago to a year ahead, as
RFC 5545 events (the icalendar library writes the format: folding, escaping, time zones),
each with a display alarm at its reminder time. The phone's calendar app subscribes to the
link and fires those alarms itself, with no signal, which Web Push cannot do. The link holds
a 256-bit secret; only its SHA-256 is kept, a user has one feed, making a new one replaces
it, and revoking it makes the link answer 404. Reading a feed is scoped like every read:
the tasks the user still sees, and nothing for an inactive user.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from server import db
from server.auth.services import actor_for_user
from server.calendar.schemas import FeedOut, FeedStatus
from server.core.actor import Actor, scope_filter
from server.core.rows import live_rows_in_scope

PAST = timedelta(days=30)
AHEAD = timedelta(days=365)
MAX_EVENTS = 2_000  # a feed's work is bounded whatever a user holds
VISIT_MINUTES, TASK_MINUTES = 30, 15
PRODUCT_ID = "-//fieldcrm//calendar feed//EN"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def make_feed(actor: Actor, private: bool, base_url: str) -> FeedOut:
    """A new secret link for the caller's feed, replacing any link they had."""
    secret = secrets.token_urlsafe(32)
    async with db.transaction():
        await db.fetch("DELETE FROM calendar_feeds WHERE user_id = {}", actor.user_id)
        await db.fetch(
            "INSERT INTO calendar_feeds (user_id, secret_sha256, private, created_at)"
            " VALUES ({}, {}, {}, {})",
            actor.user_id,
            _digest(secret),
            private,
            datetime.now(UTC),
        )
    return FeedOut(url=f"{base_url.rstrip('/')}/api/calendar/{secret}.ics", private=private)


async def feed_status(actor: Actor) -> FeedStatus:
    rows = await db.fetch(
        "SELECT private, created_at FROM calendar_feeds WHERE user_id = {}", actor.user_id
    )
    if not rows:
        return FeedStatus(active=False)
    return FeedStatus(
        active=True, private=bool(rows[0]["private"]), created_at=rows[0]["created_at"].isoformat()
    )


async def revoke_feed(actor: Actor) -> None:
    await db.fetch("DELETE FROM calendar_feeds WHERE user_id = {}", actor.user_id)


async def feed_document(secret: str, app_url: str) -> bytes | None:
    """The iCalendar document of the feed with this secret, or None (unknown, revoked, or
    its user inactive)."""
    rows = await db.fetch(
        "SELECT user_id, private FROM calendar_feeds WHERE secret_sha256 = {}", _digest(secret)
    )
    if not rows:
        return None
    actor = await actor_for_user(str(rows[0]["user_id"]))
    if actor is None:
        return None
    private = bool(rows[0]["private"])
    tasks = await _open_tasks(actor)
    accounts = {} if private else await _accounts(actor, tasks)
    document: bytes = _calendar(tasks, accounts, app_url).to_ical()
    return document


async def _open_tasks(actor: Actor) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    sql = (
        "SELECT * FROM tasks WHERE assignee_id = {} AND done = {} AND deleted = {}"
        " AND due_at >= {} AND due_at <= {}"
    )
    args: list[Any] = [actor.user_id, False, False, now - PAST, now + AHEAD]
    if actor.scopes is not None:
        where, scope_args = scope_filter(actor.scopes)
        sql += f" AND {where}"
        args += scope_args
    sql += f" ORDER BY due_at, id LIMIT {MAX_EVENTS}"
    return await db.fetch(sql, *args)


async def _accounts(actor: Actor, tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = sorted({str(t["account_id"]) for t in tasks if t["account_id"] is not None})
    return await live_rows_in_scope(actor, "accounts", ids)


def _calendar(
    tasks: list[dict[str, Any]], accounts: dict[str, dict[str, Any]], app_url: str
) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "fieldcrm")
    # How often a calendar app should look again (a hint; most poll on their own schedule).
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    for task in tasks:
        calendar.add_component(_event(task, accounts.get(str(task["account_id"])), app_url))
    return calendar


def _event(task: dict[str, Any], account: dict[str, Any] | None, app_url: str) -> icalendar.Event:
    event = icalendar.Event()
    visit = task.get("kind") == "visit"
    event.add("uid", str(task["id"]))
    event.add("dtstamp", task["updated_at"])
    event.add("dtstart", task["due_at"])
    event.add("duration", timedelta(minutes=VISIT_MINUTES if visit else TASK_MINUTES))
    event.add("summary", task["title"])
    event.add("url", f"{app_url.rstrip('/')}/#/task/{task['id']}/edit")
    if account is not None:
        event.add("description", f"{'Visit' if visit else 'Task'} at {account['name']}")
        address = _address(account)
        if address:
            event.add("location", address)
        if account["lat"] is not None and account["lng"] is not None:
            event.add("geo", (float(account["lat"]), float(account["lng"])))
    if task["remind_at"] is not None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", task["title"])
        alarm.add("trigger", task["remind_at"])
        event.add_component(alarm)
    return event


def _address(account: dict[str, Any]) -> str:
    town = " ".join(p for p in (account["postal_code"], account["city"]) if p)
    parts = [account["name"], account["street"], town, account["region"], account["country"]]
    return ", ".join(p for p in parts if p)
