"""The demo organisation reads like a real team's weeks (issue 18): visits in working hours
of the organisation's time zone, summaries that say what their outcomes say, postcodes of
the towns they are in, deals in every stage, planned visits today and tomorrow, tasks with
titles of their own. Loaded on both engines through the one writer."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server import db
from server.demo.loader import load_demo
from server.demo.places import POSTCODES, towns
from server.demo.texts import AFTER_WON, FOLLOW_UPS, SUMMARIES
from tests.conftest import Database

PARIS = ZoneInfo("Europe/Paris")
STAGES = {"lead", "qualified", "proposal", "negotiation", "won", "lost"}


def last_wednesday() -> datetime:
    """Last Wednesday, 10:40 in Paris: the first planned visits made, the others to come."""
    today = date.today()
    day = today - timedelta(days=(today.weekday() - 2) % 7 or 7)
    return datetime.combine(day, time(10, 40), tzinfo=PARIS).astimezone(UTC)


def pattern(template: str) -> re.Pattern[str]:
    """A template as a regular expression, its blanks matching any words; the first letter
    either case (a blank may open the sentence: "The owner wants...")."""
    parts = re.split(r"\{[a-zA-Z]+\}", template)
    body = ".+".join(re.escape(p) for p in parts)
    return re.compile(f"(?i:{body[:1]}){body[1:]}" if body[:1].isalpha() else body, re.S)


def local(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS)


async def test_the_demo_is_a_believable_week(started_db: Database) -> None:
    now = last_wednesday()
    summary = await load_demo(seed=7, timezone="Europe/Paris", now=now)
    assert summary and "working hours in Europe/Paris" in summary

    visits = await db.fetch(
        "SELECT account_id, user_id, started_at, ended_at, outcome, summary FROM visits"
    )
    assert len(visits) > 300
    for visit in visits:
        start, end = local(visit["started_at"]), local(visit["ended_at"])
        assert start.weekday() < 5, f"a visit on a {start:%A}: {start}"
        assert time(8, 30) <= start.time() <= time(17, 15), start
        assert end.time() <= time(18, 0) and end > start, (start, end)
        assert start <= now.astimezone(PARIS), "a visit in the future"
        templates = SUMMARIES[visit["outcome"]]
        assert any(pattern(t).fullmatch(visit["summary"]) for t in templates), visit
    # A rep is in one place at a time: their visits of a day never overlap.
    by_rep: dict[str, list[tuple[datetime, datetime]]] = {}
    for visit in visits:
        by_rep.setdefault(str(visit["user_id"]), []).append(
            (local(visit["started_at"]), local(visit["ended_at"]))
        )
    for spans in by_rep.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"overlapping visits at {start}"
    outcomes = Counter(v["outcome"] for v in visits)
    assert set(outcomes) == {"met", "no_answer", "follow_up", "won", "lost"}
    assert outcomes["no_answer"] < outcomes["met"]

    accounts = await db.fetch("SELECT name, postal_code, city, region, phone FROM accounts")
    towns_codes: dict[str, set[str]] = {}
    for town, codes in POSTCODES.values():
        towns_codes.setdefault(town, set()).update(codes)
    for account in accounts:
        assert account["postal_code"] in towns_codes[account["city"]], account
        assert re.fullmatch(r"04 \d\d \d\d \d\d \d\d", account["phone"]), account

    deals = await db.fetch(
        "SELECT d.stage, a.team_id FROM deals d JOIN accounts a ON a.id = d.account_id"
    )
    for team in {d["team_id"] for d in deals}:
        assert {d["stage"] for d in deals if d["team_id"] == team} == STAGES

    tasks = await db.fetch(
        "SELECT t.title, t.kind, t.due_at, t.done, t.assignee_id, u.username, u.role"
        " FROM tasks t JOIN users u ON u.id = t.assignee_id"
    )
    today = now.astimezone(PARIS).date()
    reps = {t["username"] for t in tasks if t["role"] == "rep"}
    assert reps == {"alice", "bruno", "carla", "driss"}
    for rep in reps:
        planned = [t for t in tasks if t["username"] == rep and t["kind"] == "visit"]
        for day in (today, today + timedelta(days=1)):
            that_day = [t for t in planned if local(t["due_at"]).date() == day]
            assert len(that_day) >= 3, (rep, day)
        for task in planned:
            due = local(task["due_at"])
            assert time(8, 30) <= due.time() <= time(17, 15), due
            # Those of today already made were marked done by the server, the rest wait.
            if due.date() > today:
                assert not task["done"], task
        assert any(t["done"] for t in planned if local(t["due_at"]).date() == today)
        assert any(not t["done"] for t in planned if local(t["due_at"]).date() == today)
    for task in tasks:
        assert time(8, 0) <= local(task["due_at"]).time() <= time(18, 0), task
    todos = [t["title"] for t in tasks if t["kind"] == "todo"]
    assert len(set(todos)) > 0.6 * len(todos)
    assert Counter(todos).most_common(1)[0][1] <= 5
    promised = [pattern(t) for t in (*FOLLOW_UPS, AFTER_WON)]
    rep_todos = [t["title"] for t in tasks if t["kind"] == "todo" and t["role"] == "rep"]
    assert all(any(p.fullmatch(title) for p in promised) for title in rep_todos)


def test_every_town_of_the_postcode_table_is_in_the_place_data() -> None:
    found = {t.name for t in (*towns("84"), *towns("93"))}
    written = {town for town, _ in POSTCODES.values()}
    assert found == written
    for town, codes in POSTCODES.values():
        assert all(re.fullmatch(r"\d{5}", c) for c in codes), town
