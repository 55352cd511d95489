"""Campaigns in the app at 360 px (docs/campaigns.md): a manager draws an area on the map
with taps, narrows it with filters, names a campaign and plans the visits; the campaign's
progress and accounts on the map follow the reps' visits, offline as last fetched. The same
drawn area reassigns accounts. The team report's CSV downloads from the Team screen."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest
from e2e.team_pages import AreaScreen, TeamScreen

UTC_PHONE = {"timezone_id": "UTC"}  # the server's days are UTC (FIELDCRM_TIMEZONE unset)
CENTRE = (45.760, 4.840)
# Four shops at the corners of a square around the centre, three near the middle: a
# rectangle from 30 % to 70 % of the map picks the middle ones only.
CORNERS = {"NW": (0.02, -0.02), "NE": (0.02, 0.02), "SW": (-0.02, -0.02), "SE": (-0.02, 0.02)}
MIDDLE = {
    "Bakery Martin": ("alice", 0.001, 0.001, "prospect"),
    "Cave des Canuts": ("bob", -0.001, -0.001, "customer"),
    "Épicerie Roux": ("bob", 0.0005, -0.0015, "prospect"),
}


async def seed(server: Server) -> dict[str, Any]:
    for name, role in (("boss", "manager"), ("alice", "rep"), ("bob", "rep")):
        server.add_user(name, role=role, team="north")
    ids: dict[str, Any] = {"accounts": {}}
    reps = {name: await Rest.login(server.url, name) for name in ("alice", "bob")}
    try:
        for corner, (dlat, dlng) in CORNERS.items():
            made = await reps["alice"].create(
                "accounts", name=f"Corner shop {corner}", city="Lyon",
                lat=CENTRE[0] + dlat, lng=CENTRE[1] + dlng,
            )  # fmt: skip
            ids["accounts"][made["name"]] = made["id"]
        for name, (owner, dlat, dlng, status) in MIDDLE.items():
            made = await reps[owner].create(
                "accounts", name=name, city="Lyon", status=status,
                lat=CENTRE[0] + dlat, lng=CENTRE[1] + dlng,
            )  # fmt: skip
            ids["accounts"][name] = made["id"]
        ids["users"] = {name: rest.user["id"] for name, rest in reps.items()}
        return ids
    finally:
        for rest in reps.values():
            await rest.close()


async def manager_phone(phones: Phones, server: Server) -> App:
    app = await phones.signed_in(server.url, "boss", **UTC_PHONE)
    return app


async def shoot(app: App, artifacts: Path, name: str) -> None:
    """Light and dark, no sideways scrolling, text readable."""
    scroll = await app.scroll_width()
    assert scroll <= PHONE["width"], f"{name}: the page is {scroll} px wide"
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        suffix = "" if scheme == "light" else "-dark"
        await app.page.screenshot(path=artifacts / f"screen-{name}{suffix}.png", full_page=True)
        low = await app.low_contrast()
        assert not low, f"{name} ({scheme}): text below WCAG AA contrast: {low}"
    await app.page.emulate_media(color_scheme="light")


def next_monday() -> datetime:
    today = datetime.now(UTC)
    return today + timedelta(days=7 - today.weekday())


async def picked_ids(app: App) -> set[str]:
    ids: list[str] = await app.tid("campaign-account").evaluate_all(
        "(els) => els.map((e) => e.dataset.id)"
    )
    return set(ids)


async def test_a_manager_plans_a_campaign_on_the_map_and_follows_it(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    accounts = ids["accounts"]
    app = await manager_phone(phones, server)
    team = TeamScreen(app)
    await team.open()
    await expect(app.tid("team-campaigns-empty")).to_be_visible()
    area = AreaScreen(app)
    await area.open_from_team()
    await expect(app.tid("campaign-count")).to_have_attribute("data-count", "7")  # no area yet

    # A rectangle by two taps: the three shops in the middle.
    await area.tap(0.3, 0.3)
    await expect(app.tid("campaign-map").locator("path.area-corner")).to_have_count(1)
    await area.tap(0.7, 0.7)
    await expect(app.tid("campaign-count")).to_have_attribute("data-count", "3")
    assert await picked_ids(app) == {accounts[name] for name in MIDDLE}
    await expect(app.tid("campaign-map").locator("path.area-shape")).to_have_count(1)
    await expect(app.tid("campaign-map").locator("path.area-picked")).to_have_count(3)
    drawn = await area.area()
    assert drawn is not None and drawn["type"] == "rectangle"

    # Filters narrow it, on the phone, at once.
    await app.tid("campaign-status").select_option("prospect")
    await expect(app.tid("campaign-count")).to_have_attribute("data-count", "2")
    await app.tid("campaign-status").select_option("")
    await expect(app.tid("campaign-count")).to_have_attribute("data-count", "3")

    # The server picks the same accounts for the same area (its dry run).
    monday = next_monday().date()
    period = {"from": monday.isoformat(), "to": (monday + timedelta(days=11)).isoformat()}
    boss = await Rest.login(server.url, "boss")
    try:
        trial = await boss.client.post(
            "/api/campaigns?dry_run=true", json={**period, "area": drawn}
        )
        assert trial.status_code == 200, trial.text
        assert {a["account_id"] for a in trial.json()["accounts"]} == await picked_ids(app)

        await app.tid("campaign-name").fill("Presqu'île tour")
        await app.tid("campaign-from").fill(period["from"])
        await app.tid("campaign-to").fill(period["to"])
        await expect(app.tid("campaign-submit")).to_have_text("Plan 3 visits")
        await shoot(app, artifacts, "campaign-new")
        await app.tid("campaign-submit").click()
        await app.expect_screen("campaign")
        await expect(app.tid("campaign-progress")).to_be_visible()
        figures = app.tid("campaign-figure")
        await expect(figures.and_(app.page.locator("[data-figure=planned]"))).to_have_attribute(
            "data-value", "3"
        )
        await expect(app.tid("campaign-row")).to_have_count(3)
        map_ = app.tid("campaign-accounts-map")
        await expect(map_.locator("path.nearby-marker-inactive")).to_have_count(3)  # none visited
        campaign_id = app.page.url.rsplit("/", 1)[-1]
        detail = (await boss.client.get(f"/api/campaigns/{campaign_id}")).json()
        assert {a["account_id"] for a in detail["accounts"]} == {accounts[n] for n in MIDDLE}

        # The planned visits reach the reps: alice's phone has hers, due on a working day.
        await app.synced()
        tasks = [t for t in await app.rows("tasks") if t.get("kind") == "visit"]
        assert len(tasks) == 3
        for task in tasks:
            due = datetime.fromisoformat(task["due_at"])
            assert due.weekday() < 5 and due.date() >= monday

        # alice visits the bakery, on site: visited and verified on the manager's screen.
        alice = await Rest.login(server.url, "alice")
        try:
            lat, lng = CENTRE[0] + 0.001, CENTRE[1] + 0.001
            await alice.create("visits", account_id=accounts["Bakery Martin"],
                               started_at=datetime.now(UTC).isoformat(), lat=lat, lng=lng,
                               accuracy_m=10, outcome="met")  # fmt: skip
        finally:
            await alice.close()
        # It counts though the campaign starts next Monday: it was made before.
        await app.go("#/team")
        await expect(app.tid("team-campaign")).to_have_attribute("data-visited", "1")
    finally:
        await boss.close()

    # Offline: the campaign as the server last said it, marked.
    await app.go(f"#/campaign/{campaign_id}")
    await expect(app.tid("campaign-row")).to_have_count(3)
    await shoot(app, artifacts, "campaign")
    await app.set_offline(True)
    await app.go("#/tasks")
    await app.go(f"#/campaign/{campaign_id}")
    await expect(app.tid("campaign-source")).to_contain_text("Offline: as the server said at")
    await expect(app.tid("campaign-row")).to_have_count(3)
    await app.go("#/campaign/new")
    await expect(app.tid("campaign-offline")).to_be_visible()
    await expect(app.tid("campaign-submit")).to_be_disabled()
    await app.set_offline(False)


async def test_progress_counts_the_visits_of_a_campaign_that_starts_today(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    """A campaign that starts today: a rep's verified visit shows at once."""
    ids = await seed(server)
    accounts = ids["accounts"]
    boss = await Rest.login(server.url, "boss")
    try:
        today = datetime.now(UTC).date()
        end = today + timedelta(days=14)
        made = await boss.client.post(
            "/api/campaigns",
            json={"name": "Now", "from": today.isoformat(), "to": end.isoformat(),
                  "area": {"type": "rectangle", "points": [[45.75, 4.83], [45.77, 4.85]]}},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        campaign_id = made.json()["campaign"]["id"]
    finally:
        await boss.close()
    alice = await Rest.login(server.url, "alice")
    try:
        lat, lng = CENTRE[0] + 0.001, CENTRE[1] + 0.001
        await alice.create("visits", account_id=accounts["Bakery Martin"],
                           started_at=datetime.now(UTC).isoformat(), lat=lat, lng=lng,
                           accuracy_m=10, outcome="met")  # fmt: skip
    finally:
        await alice.close()
    app = await manager_phone(phones, server)
    await TeamScreen(app).open()
    row = app.tid("team-campaign")
    await expect(row).to_have_attribute("data-visited", "1")
    await expect(row).to_have_attribute("data-accounts", "3")
    await shoot(app, artifacts, "team-campaigns")
    await row.locator("a").click()
    await app.expect_screen("campaign")
    assert app.page.url.endswith(f"#/campaign/{campaign_id}")
    visited = app.page.locator(f'[data-testid=campaign-row][data-id="{accounts["Bakery Martin"]}"]')
    await expect(visited).to_have_attribute("data-state", "customer")  # visited and verified
    await expect(
        app.tid("campaign-accounts-map").locator("path.nearby-marker-customer")
    ).to_have_count(1)
    for name, value in (("visited", "1"), ("verified", "1"), ("done", "1"), ("accounts", "3")):
        figure = app.page.locator(f"[data-testid=campaign-figure][data-figure={name}]")
        await expect(figure).to_have_attribute("data-value", value)


async def test_the_drawn_area_reassigns_its_accounts(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    app = await manager_phone(phones, server)
    # From the accounts list's select mode, "Pick on a map".
    await app.accounts.open()
    await app.tid("account-select-mode").click()
    await app.tid("account-select-map").click()
    await app.expect_screen("campaign")
    area = AreaScreen(app)
    await expect(app.tid("campaign-map").locator("path.nearby-marker").first).to_be_attached()
    # A polygon by three taps round the middle.
    await app.tid("campaign-shape-polygon").click()
    for fx, fy in ((0.3, 0.3), (0.72, 0.3), (0.5, 0.75)):
        await area.tap(fx, fy)
    await expect(app.tid("campaign-map").locator("path.area-corner")).to_have_count(3)
    picked = await area.count()
    assert 1 <= picked <= 3, picked
    chosen = await picked_ids(app)
    assert chosen <= {ids["accounts"][n] for n in MIDDLE}
    await app.tid("campaign-undo").click()
    await expect(app.tid("campaign-map").locator("path.area-corner")).to_have_count(2)
    await expect(app.tid("campaign-count")).to_have_attribute("data-count", "7")  # no area
    await area.tap(0.5, 0.75)
    await expect(app.tid("campaign-count")).to_have_attribute("data-count", str(picked))

    await shoot(app, artifacts, "campaign-area-polygon")
    # With large text, still no sideways scrolling.
    await app.page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    await shoot(app, artifacts, "campaign-area-200")
    await app.page.evaluate("() => { document.documentElement.style.fontSize = ''; }")

    await app.tid("campaign-reassign").click()
    await app.expect_screen("reassign")
    await expect(app.tid("reassign-account")).to_have_count(picked)
    listed = set(
        await app.tid("reassign-account").evaluate_all("(els) => els.map((e) => e.dataset.id)")
    )
    assert listed == chosen
    await app.tid("reassign-to").select_option(ids["users"]["bob"])
    await expect(app.tid("reassign-preview")).to_be_visible()
    await app.tid("reassign-confirm").click()
    await expect(app.tid("reassign-summary")).to_have_attribute("data-failed", "0")
    boss = await Rest.login(server.url, "boss")
    try:
        for account_id in chosen:
            assert (await boss.get("accounts", account_id))["account"]["owner_id"] == ids["users"][
                "bob"
            ]
    finally:
        await boss.close()


async def test_the_team_report_downloads_as_csv(server: Server, phones: Phones) -> None:
    await seed(server)
    app = await manager_phone(phones, server)
    await TeamScreen(app).open()
    async with app.page.expect_download() as waiting:
        await app.tid("team-csv").click()
    download = await waiting.value
    assert download.suggested_filename.startswith("team-report-")
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert sorted(r["username"] for r in rows) == ["alice", "bob", "boss"]
    assert {"visits", "new_accounts", "last_sync_at"} <= set(rows[0])
    assert {r["username"]: r["new_accounts"] for r in rows}["alice"] == "5"


async def test_a_map_left_while_it_moves_logs_no_error(server: Server, phones: Phones) -> None:
    """Leaflet ends a zoom on a timer and tells a resize's end late; a screen left meanwhile
    has removed its map: neither may throw (the phones fixture fails on any error)."""
    await seed(server)
    app = await manager_phone(phones, server)
    boss = await Rest.login(server.url, "boss")
    try:
        today = datetime.now(UTC).date()
        made = await boss.client.post(
            "/api/campaigns",
            json={"name": "Moving", "from": today.isoformat(),
                  "to": (today + timedelta(days=7)).isoformat(),
                  "area": {"type": "rectangle", "points": [[45.75, 4.83], [45.77, 4.85]]}},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        campaign = f"#/campaign/{made.json()['campaign']['id']}"
    finally:
        await boss.close()
    markers = app.tid("campaign-accounts-map").locator("path.nearby-marker")
    zoom_in = app.tid("campaign-accounts-map").locator(".leaflet-control-zoom-in")
    for _ in range(3):
        await app.go(campaign)
        await expect(markers).to_have_count(3)
        # Animated: its end comes 250 ms later, on a timer; the screen is left at once.
        await zoom_in.evaluate("(b) => { b.click(); location.hash = '#/tasks'; }")
        await app.page.wait_for_timeout(400)
        await app.go(campaign)
        await expect(markers).to_have_count(3)
        await app.page.set_viewport_size({"width": PHONE["width"] - 40, "height": PHONE["height"]})
        await app.go("#/tasks")  # the resize's moveend comes 200 ms later
        await app.page.wait_for_timeout(400)
        await app.page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    assert not app.watch.errors, app.watch.errors
