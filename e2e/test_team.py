"""The manager's workspace in the app (issue 16, SPEC section 7): the Team screen shows the
figures the report API computes, for the range picked; each rep's phones with what they
still hold; the team's latest visits and notes with their authors; today's check-ins on a
map; and reassigning accounts, from one to all in a filter. Reps never see any of it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Request, Route, expect

from e2e.conftest import Server
from e2e.map_support import sync_accounts, sync_records
from e2e.pages import PHONE, App, Phones, Rest
from e2e.team_pages import ReassignScreen, TeamScreen

LAT, LNG = 45.76404, 4.83566
LAPTOP = {"width": 1280, "height": 800}
UTC_PHONE = {"timezone_id": "UTC"}  # the server counts days in UTC (FIELDCRM_TIMEZONE unset)
MARKER = "path.nearby-marker"
REFUSED = "Failed to load resource: the server responded with a status of 503"


def js_number(value: float) -> str:
    """A number as JavaScript's String() writes it."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def money_value(sums: dict[str, float]) -> str:
    return ";".join(f"{c}:{js_number(a)}" for c, a in sorted(sums.items()))


def moments() -> dict[str, datetime]:
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    monday = midnight - timedelta(days=midnight.weekday())
    return {
        "today": midnight + (now - midnight) / 2,  # today, and in the past, at any hour
        "last_week": monday - timedelta(days=3, hours=-10),
        "long_ago": midnight - timedelta(days=60),
    }


async def seed(server: Server) -> dict[str, Any]:
    """A manager and two reps in `north` with a little of everything, and a rep in `south`
    whose work the manager must not see."""
    for name, role, team in (
        ("boss", "manager", "north"),
        ("alice", "rep", "north"),
        ("bob", "rep", "north"),
        ("carol", "rep", "south"),
    ):
        server.add_user(name, role=role, team=team)
    at = moments()
    ids: dict[str, Any] = {}
    alice = await Rest.login(server.url, "alice")
    bob = await Rest.login(server.url, "bob")
    carol = await Rest.login(server.url, "carol")
    try:
        ids["users"] = {"alice": alice.user["id"], "bob": bob.user["id"]}
        halles = await alice.create("accounts", name="Les Halles de Lyon", status="customer",
                                    city="Lyon", lat=LAT, lng=LNG)  # fmt: skip
        bakery = await alice.create("accounts", name="Bakery Martin", city="Lyon",
                                    lat=LAT + 0.01, lng=LNG + 0.01)  # fmt: skip
        bakery2 = await bob.create("accounts", name="Bakery Roux", city="Villeurbanne",
                                   lat=LAT + 0.02, lng=LNG - 0.01)  # fmt: skip
        cave = await bob.create("accounts", name="Cave des Canuts", city="Lyon",
                                lat=LAT - 0.01, lng=LNG)  # fmt: skip
        await carol.create("accounts", name="Southern Shop", city="Marseille")
        ids["accounts"] = {a["name"]: a["id"] for a in (halles, bakery, bakery2, cave)}
        visit = await alice.create("visits", account_id=halles["id"],
                                   started_at=at["today"].isoformat(),
                                   lat=LAT + 0.0001, lng=LNG, accuracy_m=8, outcome="met",
                                   summary="Walked the counters.")  # fmt: skip
        ids["visit"] = visit["id"]
        await alice.create("visits", account_id=bakery["id"],
                           started_at=at["last_week"].isoformat(), outcome="no_answer")  # fmt: skip
        await bob.create("visits", account_id=bakery2["id"], started_at=at["today"].isoformat(),
                         lat=LAT + 0.0201, lng=LNG - 0.01, accuracy_m=10, outcome="follow_up",
                         summary="Wants samples.")  # fmt: skip
        await alice.create("notes", account_id=halles["id"], visit_id=visit["id"],
                           body="Deliveries before 7 am only.")  # fmt: skip
        await bob.create("notes", account_id=bakery2["id"], body="Closed on Mondays.")
        await alice.create("contacts", account_id=halles["id"], name="Camille Roux")
        await bob.create("contacts", account_id=bakery2["id"], name="Jean Roux")
        task = await alice.create("tasks", account_id=halles["id"], title="Send the quote")
        await alice.update("tasks", task["id"], done=True)
        today = at["today"].date().isoformat()
        await alice.create("deals", account_id=halles["id"], title="Refit", stage="won",
                           amount=12000, currency="EUR", close_date=today)  # fmt: skip
        await bob.create("deals", account_id=bakery2["id"], title="Oven", stage="won",
                         amount=500, currency="USD", close_date=today)  # fmt: skip
        await alice.create("deals", account_id=halles["id"], title="Cheese counter",
                           stage="proposal", amount=18500, currency="EUR")  # fmt: skip
        await bob.create("deals", account_id=bakery2["id"], title="Shelves", stage="lead",
                         amount=1000, currency="EUR")  # fmt: skip
        await bob.create("deals", account_id=cave["id"], title="Cellar", stage="negotiation",
                         amount=2000, currency="USD")  # fmt: skip
        return ids
    finally:
        for rest in (alice, bob, carol):
            await rest.close()


async def api_report(server: Server, query: dict[str, str]) -> dict[str, Any]:
    boss = await Rest.login(server.url, "boss")
    try:
        response = await boss.client.get("/api/reports/team", params=query)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report
    finally:
        await boss.close()


async def expect_figures(team: TeamScreen, report: dict[str, Any]) -> None:
    """Every figure on the screen is the API's."""
    reps = [r for r in report["reps"] if r["active"] or r["visits"]]
    await expect(team.tid("team-rep")).to_have_count(len(reps))
    for rep in reps:
        expected = {
            name: str(rep[name])
            for name in (
                "visits",
                "verified_visits",
                "accounts_visited",
                "new_accounts",
                "notes",
                "tasks_done",
                "deals_won",
            )  # fmt: skip
        }
        expected["won_amount"] = money_value(rep["won_amount"])
        expected["open_pipeline"] = money_value(rep["open_pipeline"])
        assert await team.figures(rep["user_id"]) == expected, rep["username"]
    assert await team.days() == [
        {"date": d["date"], "visits": d["visits"], "verified_visits": d["verified_visits"]}
        for d in report["days"]
    ]
    assert await team.stages() == [
        {
            "stage": s["stage"],
            "deals": s["deals"],
            "amount": money_value(s["amount"]),
            "weighted": money_value(s["weighted"]),
        }  # fmt: skip
        for s in report["pipeline"]
    ]
    forecast: dict[str, float] = {}
    for stage in report["pipeline"]:
        for currency, amount in stage["weighted"].items():
            forecast[currency] = forecast.get(currency, 0) + amount
    await expect(team.tid("team-forecast")).to_have_attribute("data-value", money_value(forecast))
    await expect(team.tid("team-not-visited-count")).to_have_attribute(
        "data-count", str(len(report["not_visited"]))
    )


async def manager_phone(phones: Phones, server: Server, **options: Any) -> App:
    return await phones.signed_in(server.url, "boss", **UTC_PHONE, **options)


async def test_the_team_screen_shows_the_reports_figures_for_the_range_picked(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    app = await manager_phone(phones, server)
    team = TeamScreen(app)

    query = await team.open()
    start = date.fromisoformat(query["from"])
    assert start.weekday() == 0 and query["to"] == datetime.now(UTC).date().isoformat()
    this_week = report = await api_report(server, query)
    assert sum(d["visits"] for d in report["days"]) == 2  # the seeds are there
    await expect_figures(team, report)
    assert (await team.figures(ids["users"]["alice"]))["won_amount"] == "EUR:12000"

    # The leaderboard ranks by visits, or by an amount won.
    await team.tid("team-rank-by").select_option("won:EUR")
    first = team.tid("team-leader").first
    await expect(first).to_have_attribute("data-id", ids["users"]["alice"])
    await expect(first).to_have_attribute("data-rank", "1")

    # Last week: alice's one visit there.
    query = await team.choose("last_week")
    assert date.fromisoformat(query["from"]) == start - timedelta(days=7)
    report = await api_report(server, query)
    assert [r["visits"] for r in report["reps"] if r["username"] == "alice"] == [1]
    await expect_figures(team, report)

    # Custom dates, and a range the server refuses is said on the phone first.
    await team.tid("team-range").select_option("custom")
    await team.tid("team-from").fill("2026-03-10")
    await team.tid("team-to").fill("2026-03-01")
    await team.tid("team-apply").click()
    await expect(team.tid("team-range-error")).to_have_text("The first date is after the last.")
    today = datetime.now(UTC).date()
    query = await team.choose("custom", from_=(today - timedelta(days=90)).isoformat(),
                              to=today.isoformat())  # fmt: skip
    report = await api_report(server, query)
    assert sum(d["visits"] for d in report["days"]) == 3
    await expect_figures(team, report)

    # The feed names who did what, from the phone's rows; nothing of the other team.
    feed = team.tid("team-feed-row")
    await expect(feed).to_have_count(5)  # 3 visits and 2 notes
    authors = await team.tid("team-feed-author").all_inner_texts()
    assert sorted(set(authors)) == ["alice", "bob"]
    await expect(app.page.get_by_text("Southern Shop")).to_have_count(0)

    # The not-visited accounts, on a list and a map.
    await team.tid("team-not-visited-days").select_option("60")
    await expect(team.tid("team-stale-row")).to_have_count(1)  # never visited
    await expect(team.tid("team-stale-row")).to_contain_text("Cave des Canuts")
    await expect(team.tid("team-not-visited-map").locator(MARKER).first).to_be_attached()

    # Offline: the last report fetched for the range asked (the tab's: this week), marked.
    await app.tasks.open()
    await app.set_offline(True)
    await app.tid("nav-team").click()
    await team.expect_source("cache")
    await expect(team.tid("team-source")).to_contain_text("Offline: the figures need a connection.")
    await expect(team.tid("team-source")).to_contain_text("Showing the report computed at")
    await expect_figures(team, this_week)
    await app.set_offline(False)


async def test_authors_and_todays_checkins(server: Server, phones: Phones, artifacts: Path) -> None:
    ids = await seed(server)
    app = await manager_phone(phones, server)

    # Visits and notes say whose they are: Today's recent visits, the account, the visit.
    recent = app.tid("today-visits").get_by_test_id("visit-author")
    await expect(recent).to_have_count(3)
    assert sorted(await recent.all_inner_texts()) == ["alice", "alice", "bob"]
    await app.account.open(ids["accounts"]["Les Halles de Lyon"])
    await expect(app.tid("account-visits").get_by_test_id("visit-author")).to_have_text("alice")
    await expect(app.tid("account-notes").get_by_test_id("note-author")).to_have_text("alice")
    await app.visit.open(ids["visit"])
    await expect(app.tid("visit-author")).to_have_text("alice")

    # Today's verified check-ins, by rep, where each visit was logged.
    await app.go("#/team/checkins")
    await expect(app.tid("checkins-count")).to_have_attribute("data-count", "2")
    rows = app.tid("checkin-row")
    await expect(rows).to_have_count(2)
    users = await rows.evaluate_all("(els) => els.map((e) => e.dataset.user).sort()")
    assert users == sorted(ids["users"].values())
    await expect(app.tid("checkins-map").locator("path.checkin-marker")).to_have_count(2)
    await app.page.screenshot(path=artifacts / "screen-team-checkins.png", full_page=True)


CROWD = 120  # never visited, in a few streets
VISITED = 40  # checked in at today, in a few other streets
# What a map shows of its points: those drawn one by one, and those counted in clusters.
SHOWN = """(box) => [box.querySelectorAll("path.nearby-marker").length,
  [...box.querySelectorAll(".map-cluster")].reduce((n, c) => n + Number(c.textContent), 0),
  box.querySelectorAll(".map-cluster").length,
  box.querySelectorAll(".map-cluster-due").length]"""


async def test_the_team_maps_cluster_like_nearby(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    """A team's hundreds of not-visited accounts and of today's check-ins are a few clusters
    with their counts (Leaflet.markercluster, as on Nearby), not a carpet of dots."""
    server.add_user("boss", role="manager")
    server.add_user("alice")
    crowd = [{"name": f"Stale {i:03d}", "lat": LAT + 0.02 + (i % 12) * 0.0004,
              "lng": LNG + (i // 12) * 0.0005} for i in range(CROWD)]  # fmt: skip
    sync_accounts(server, "alice", crowd)
    shops = [{"name": f"Seen {i:02d}", "lat": LAT - 0.02 + (i % 8) * 0.0004,
              "lng": LNG + (i // 8) * 0.0005} for i in range(VISITED)]  # fmt: skip
    ids = sync_accounts(server, "alice", shops)
    # Today in the past at any hour (n minutes ago is yesterday just after midnight).
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    sync_records(server, "alice", "visits", [
        {"account_id": i,
         "started_at": (midnight + (now - midnight) * (n + 1) / (VISITED + 1)).isoformat(),
         "lat": shop["lat"], "lng": shop["lng"], "accuracy_m": 10}
        for n, (i, shop) in enumerate(zip(ids, shops, strict=True))
    ])  # fmt: skip
    app = await manager_phone(phones, server)
    team = TeamScreen(app)
    await team.open()
    await expect(team.tid("team-not-visited-count")).to_have_attribute("data-count", str(CROWD))
    stale = team.tid("team-not-visited-map")
    await expect(stale.locator(".map-cluster").first).to_be_visible()
    await stale.screenshot(path=artifacts / "screen-team-stale-clusters.png")
    markers, clustered, clusters, due = await stale.evaluate(SHOWN)
    assert markers + clustered == CROWD and markers + clusters <= 20 and due == clusters

    await app.go("#/team/checkins")
    await expect(app.tid("checkins-count")).to_have_attribute("data-count", str(VISITED))
    checkins = app.tid("checkins-map")
    await expect(checkins.locator(".map-cluster").first).to_be_visible()
    markers, clustered, clusters, due = await checkins.evaluate(
        SHOWN.replace("nearby-marker", "checkin-marker")
    )
    await app.page.screenshot(path=artifacts / "screen-team-checkins-clusters.png")
    assert markers + clustered == VISITED and markers + clusters <= 12 and due == 0
    # A tap on a cluster zooms in until its check-ins are apart.
    await checkins.locator(".map-cluster").first.click()
    await expect(checkins.locator("path.checkin-marker").first).to_be_attached()
    assert await app.scroll_width() <= PHONE["width"]


QUEUE = """async (count) => {
  const records = await import("/js/records.js");
  const writes = [];
  for (let n = 0; n < count; n += 1) {
    writes.push({ table: "accounts", id: crypto.randomUUID(), op: "upsert",
                  fields: { name: `Shop ${n}` } });
  }
  await records.saveWrites(writes);
}"""


async def test_the_manager_sees_a_reps_phone_that_holds_unsent_work(
    server: Server, phones: Phones
) -> None:
    await seed(server)
    rep = await phones.signed_in(server.url, "alice", **UTC_PHONE, controlled=False)
    # 501 writes made offline: the first request carries 500 and reports one still held;
    # then the server stops answering, so that report stays the last.
    await rep.set_offline(True)
    await rep.page.evaluate(QUEUE, 501)
    sent: list[Request] = []

    async def first_only(route: Route) -> None:
        sent.append(route.request)
        if len(sent) == 1:
            await route.continue_()
        else:
            await route.fulfill(status=503, json={"error": "unavailable", "detail": "Down."})

    await rep.page.route("**/api/sync/v1", first_only)
    await rep.set_offline(False)
    status = await rep.sync()
    assert status["pending"] == 1, status
    client_id = await rep.meta("client_id")

    app = await manager_phone(phones, server)
    team = TeamScreen(app)
    await team.open()
    device = team.device(client_id)
    await expect(device).to_have_attribute("data-pending", "1")
    pending = device.get_by_test_id("team-device-pending")
    await expect(pending).to_contain_text("1 unsent write, oldest from")
    alice_id = (await rep.meta("user"))["id"]
    await expect(team.rep(alice_id)).to_contain_text("1 unsent on their phone")
    await expect(team.tid("team-complete")).to_contain_text("Complete through")
    rep.watch.errors[:] = [e for e in rep.watch.errors if REFUSED not in e]


async def test_a_manager_reassigns_accounts_and_what_hangs_off_them(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    accounts = ids["accounts"]
    bob_id, alice_id = ids["users"]["bob"], ids["users"]["alice"]
    app = await manager_phone(phones, server)
    screen = ReassignScreen(app)

    # Two of alice's accounts, picked one by one, go to bob.
    await screen.select_mode()
    await screen.pick(accounts["Les Halles de Lyon"])
    await screen.pick(accounts["Bakery Martin"])
    await expect(app.tid("account-selected")).to_have_attribute("data-count", "2")
    assert await app.scroll_width() <= PHONE["width"]
    await app.page.screenshot(path=artifacts / "screen-accounts-select.png")
    await screen.start()
    await expect(app.tid("reassign-account")).to_have_count(2)
    # Halles: 1 contact, 1 visit, 1 note, 1 task, 2 deals; Bakery Martin: 1 visit.
    hanging = {"contacts": 1, "visits": 2, "notes": 1, "tasks": 1, "deals": 2}
    assert await screen.hanging() == hanging
    await expect(app.tid("reassign-unsent")).to_contain_text("follows the accounts")
    await screen.give_to(bob_id)
    await expect(app.tid("reassign-preview")).to_have_text("2 accounts will go to bob.")
    await app.page.screenshot(path=artifacts / "screen-reassign.png", full_page=True)

    # Offline it says so, and changes nothing.
    await app.set_offline(True)
    await expect(app.tid("reassign-offline")).to_be_visible()
    await expect(app.tid("reassign-confirm")).to_be_disabled()
    await app.set_offline(False)
    await expect(app.tid("reassign-confirm")).to_be_enabled()

    await app.tid("reassign-confirm").click()
    summary = app.tid("reassign-summary")
    await expect(summary).to_have_attribute("data-moved", "2")
    await expect(summary).to_have_attribute("data-failed", "0")
    await expect(app.tid("reassign-progress")).to_have_attribute("data-done", "2")
    await app.synced()  # the phone has the new owners before the next preview counts them
    boss = await Rest.login(server.url, "boss")
    try:
        for name in ("Les Halles de Lyon", "Bakery Martin"):
            assert (await boss.get("accounts", accounts[name]))["account"]["owner_id"] == bob_id

        # All the accounts in a filter ("bakery": both bob's now).
        await app.accounts.open()
        await app.tid("account-search").fill("bakery")
        await expect(app.tid("account-count")).to_have_text("2 accounts")
        await app.tid("account-select-mode").click()
        await app.tid("account-select-all").click()
        await expect(app.tid("account-selected")).to_have_attribute("data-count", "2")
        await screen.start()
        await screen.give_to(alice_id)
        await expect(app.tid("reassign-preview")).to_have_text("2 accounts will go to alice.")
        await app.tid("reassign-confirm").click()
        await expect(app.tid("reassign-summary")).to_have_attribute("data-moved", "2")
        for name in ("Bakery Martin", "Bakery Roux"):
            assert (await boss.get("accounts", accounts[name]))["account"]["owner_id"] == alice_id

        # One account from its own screen; one the server refuses is named with why.
        await app.synced()
        await app.account.open(accounts["Cave des Canuts"])
        await app.tid("account-reassign-one").click()
        await app.expect_screen("reassign")
        await boss.delete("accounts", accounts["Cave des Canuts"])
        await screen.give_to(alice_id)
        await app.tid("reassign-confirm").click()
        await expect(app.tid("reassign-summary")).to_have_attribute("data-failed", "1")
        await expect(app.tid("reassign-failure")).to_contain_text("Cave des Canuts")
    finally:
        await boss.close()
    app.watch.errors[:] = [e for e in app.watch.errors if "status of 404" not in e]


async def test_a_rep_has_no_team_tab(server: Server, phones: Phones) -> None:
    await seed(server)
    app = await phones.signed_in(server.url, "alice", controlled=False)
    await expect(app.tid("nav-today")).to_be_visible()
    await expect(app.tid("nav-team")).to_be_hidden()
    await app.accounts.open()
    await expect(app.tid("account-select-mode")).to_have_count(0)
    await app.go("#/team")
    await expect(app.tid("team-not-manager")).to_be_visible()
    await app.go("#/reassign?ids=x")
    await expect(app.tid("team-not-manager")).to_be_visible()


async def shoot(app: App, artifacts: Path, name: str, width: int) -> None:
    """Light and dark, no sideways scrolling, text readable."""
    scroll = await app.scroll_width()
    assert scroll <= width, f"{name}: the page is {scroll} px wide"
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        await app.page.screenshot(path=artifacts / f"screen-{name}-{scheme}.png", full_page=True)
        low = await app.low_contrast()
        assert not low, f"{name} ({scheme}): text below WCAG AA contrast: {low}"
    await app.page.emulate_media(color_scheme="light")


async def test_the_team_screen_on_a_phone_a_laptop_and_with_large_text(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    await seed(server)
    for name, viewport in (("team", PHONE), ("team-laptop", LAPTOP)):
        app = await manager_phone(phones, server, viewport=viewport)
        team = TeamScreen(app)
        await team.open()
        await expect(team.tid("team-chart")).to_be_visible()
        await expect(team.tid("team-device").first).to_be_visible()
        await expect(app.tid("team-not-visited-map").locator(MARKER).first).to_be_attached()
        await shoot(app, artifacts, name, viewport["width"])
    await app.page.set_viewport_size(PHONE)
    await app.page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    await shoot(app, artifacts, "team-200", PHONE["width"])
    # The nav still fits with its seventh tab.
    assert await app.tid("nav-settings").is_visible()
