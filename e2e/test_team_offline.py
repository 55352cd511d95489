"""The team report offline (issue 16, docs/reports.md "In the app, and offline"): a
manager's phone that never fetched a period computes its figures from the rows it holds,
and they are the server's (`GET /api/reports/team`, asked here, not by the phone), days
counted in the org's time zone around midnight; the figures are labelled as computed on
the phone, with when, from which sync, and how many of its changes are not sent yet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from e2e.conftest import Server, start_server
from e2e.pages import PHONE, App, Phones, Rest
from e2e.team_pages import TeamScreen
from e2e.test_ergonomics import text_size
from e2e.test_team import api_report, expect_figures, manager_phone, seed

ORG_ZONE = "America/New_York"  # the phone is in UTC: only the org's zone gives these days

NOTE_OFFLINE = """async (accountId) => {
  const records = await import("/js/records.js");
  await records.saveWrites([{ table: "notes", id: crypto.randomUUID(), op: "upsert",
                              fields: { account_id: accountId, body: "Written offline." } }]);
}"""


async def pick(team: TeamScreen, preset: str, from_: str = "", to: str = "") -> None:
    """Pick a range with no request expected (offline)."""
    await team.tid("team-range").select_option(preset)
    if preset == "custom":
        await team.tid("team-from").fill(from_)
        await team.tid("team-to").fill(to)
        await team.tid("team-apply").click()


async def shoot(app: App, artifacts: Path, name: str) -> None:
    """At 100% and 200% text, no sideways scrolling."""
    for percent in (100, 200):
        await text_size(app, percent)
        scroll = await app.scroll_width()
        assert scroll <= PHONE["width"], f"{name} at {percent}%: the page is {scroll} px wide"
        suffix = "-text200" if percent == 200 else ""
        await app.page.screenshot(path=artifacts / f"screen-{name}{suffix}.png", full_page=True)
    await text_size(app, 100)


def range_query(start: str, end: str) -> dict[str, str]:
    return {"from": start, "to": end, "not_visited_days": "30"}


async def test_offline_the_phone_computes_a_period_it_never_fetched(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    app = await manager_phone(phones, server)
    team = TeamScreen(app)
    this_week = await api_report(server, await team.open())  # kept on the phone
    await app.synced()  # the phone's rows are now newer than the kept report

    await app.set_offline(True)
    # A note written offline: unsent, so not in the figures, and the label says so.
    await app.page.evaluate(NOTE_OFFLINE, ids["accounts"]["Les Halles de Lyon"])
    await pick(team, "last_week")
    await team.expect_source("phone")
    source = team.tid("team-source")
    await expect(source).to_contain_text("Offline: computed on this phone at")
    await expect(source).to_contain_text("days in UTC")
    await expect(team.tid("team-unsent")).to_have_attribute("data-count", "1")
    await expect(team.tid("team-unsent")).to_have_text(
        "1 change made on this phone is not sent yet and not counted."
    )
    monday = date.fromisoformat(this_week["from"])
    last_week = range_query((monday - timedelta(days=7)).isoformat(),
                            (monday - timedelta(days=1)).isoformat())  # fmt: skip
    report = await api_report(server, last_week)
    assert sum(d["visits"] for d in report["days"]) == 1
    await expect_figures(team, report)
    await shoot(app, artifacts, "team-offline-phone")

    # A long custom range: every figure of the seeds, won deals and the pipeline too.
    today = datetime.now(UTC).date()
    await pick(team, "custom", (today - timedelta(days=90)).isoformat(), today.isoformat())
    await team.expect_source("phone")
    report = await api_report(server, range_query((today - timedelta(days=90)).isoformat(),
                                                  today.isoformat()))  # fmt: skip
    assert sum(d["visits"] for d in report["days"]) == 3
    await expect_figures(team, report)

    # The period kept: the server's answer, with the offer of the phone's newer figures.
    await pick(team, "this_week")
    await team.expect_source("cache")
    await expect_figures(team, this_week)
    await team.tid("team-compute").click()
    await team.expect_source("phone")
    await expect_figures(team, await api_report(server, range_query(this_week["from"],
                                                                    this_week["to"])))  # fmt: skip
    await app.set_offline(False)


@pytest.fixture
def org_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose days are New York's."""
    srv = start_server(tmp_path, {"FIELDCRM_TIMEZONE": ORG_ZONE})
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


async def test_days_around_midnight_are_the_orgs_offline_too(
    org_server: Server, phones: Phones, artifacts: Path
) -> None:
    server = org_server
    server.add_user("boss", role="manager")
    server.add_user("alice")
    zone = ZoneInfo(ORG_ZONE)
    day = datetime.now(zone).date() - timedelta(days=10)
    midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    alice = await Rest.login(server.url, "alice")
    try:
        shop = await alice.create("accounts", name="Épicerie de nuit", city="Lyon")
        for moment in (
            midnight - timedelta(minutes=30),
            midnight - timedelta(microseconds=1),  # still the first day
            midnight,  # the second day's first instant
            midnight + timedelta(minutes=30),
            midnight + timedelta(hours=4, minutes=59),  # 04:59 UTC: still the second day
        ):
            await alice.create("visits", account_id=shop["id"], started_at=moment.isoformat())
        await alice.create("deals", account_id=shop["id"], title="Night shelves", stage="won",
                           amount=300.125, currency="EUR", close_date=day.isoformat())  # fmt: skip
    finally:
        await alice.close()

    app = await manager_phone(phones, server, locale="fr-FR")
    team = TeamScreen(app)
    await team.open()  # this week, kept: it tells the phone the org's time zone
    await app.set_offline(True)
    for start, end in ((day, day), (day + timedelta(days=1), day + timedelta(days=1)),
                       (day - timedelta(days=1), day + timedelta(days=2))):  # fmt: skip
        await pick(team, "custom", start.isoformat(), end.isoformat())
        await team.expect_source("phone")
        await expect(team.tid("team-source")).to_contain_text(f"jours du fuseau {ORG_ZONE}")
        report = await api_report(server, range_query(start.isoformat(), end.isoformat()))
        await expect_figures(team, report)
    days = {d["date"]: d["visits"] for d in report["days"]}
    assert days == {
        (day - timedelta(days=1)).isoformat(): 0,
        day.isoformat(): 2,
        (day + timedelta(days=1)).isoformat(): 3,
        (day + timedelta(days=2)).isoformat(): 0,
    }
    await expect(team.tid("team-source")).to_contain_text("Hors ligne : calculé sur ce téléphone à")
    await shoot(app, artifacts, "team-offline-phone-fr")
    await app.set_offline(False)
