"""The main screens on a 360x740 phone, light and dark: each one shows its content, fits
the width (no sideways scrolling), keeps its text readable (WCAG AA contrast), has no
serious or critical axe-core violation (e2e/a11y.py) and logs no error. Screenshots go to
test-artifacts/ for review. The page is served with a strict Content-Security-Policy that
nothing breaks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from e2e.a11y import check_axe
from e2e.conftest import Server
from e2e.nearby_pages import NearbyScreen
from e2e.pages import PHONE, App, Phones, Rest

LAT, LNG = 45.76404, 4.83566


async def seed(server: Server) -> dict[str, str]:
    """One account with something in every section, and a conflict on its phone."""
    server.add_user("alice", team="north")
    server.add_user("bob", team="north")
    alice = await Rest.login(server.url, "alice")
    bob = await Rest.login(server.url, "bob")
    try:
        now = datetime.now(UTC)
        account = await alice.create(
            "accounts",
            name="Les Halles de Lyon Paul Bocuse",
            status="customer",
            phone="+33 4 78 62 39 33",
            email="contact@halles-de-lyon.example",
            website="halles-de-lyon.example",
            street="102 Cours Lafayette",
            postal_code="69003",
            city="Lyon",
            country="France",
            lat=LAT,
            lng=LNG,
        )
        account_id = account["id"]
        await alice.create(
            "contacts",
            account_id=account_id,
            name="Camille Roux",
            title="Head buyer",
            phone="+33 6 12 34 56 78",
        )
        await alice.create(
            "deals",
            account_id=account_id,
            title="Cheese counter refit",
            stage="proposal",
            amount=18500,
            currency="EUR",
        )
        visit = await alice.create(
            "visits",
            account_id=account_id,
            started_at=(now - timedelta(hours=2)).isoformat(),
            ended_at=(now - timedelta(hours=1)).isoformat(),
            lat=LAT + 0.0001,
            lng=LNG,
            accuracy_m=8,
            outcome="met",
            summary="Walked the counters with Camille.",
        )
        await alice.create(
            "notes",
            account_id=account_id,
            visit_id=visit["id"],
            body="Deliveries before 7 am only, gate B.",
        )
        task = await alice.create(
            "tasks",
            account_id=account_id,
            title="Send the refit quote",
            due_at=(now - timedelta(minutes=30)).isoformat(),  # overdue: "due today" all day
        )
        # Bob's phone, offline since yesterday, set another number: it loses, and is kept.
        yesterday = int((time.time() - 86_400) * 1000)
        response = await bob.sync(
            {
                "protocol": 1,
                "client_id": "0d6f5a0e-3d1b-4d1e-9c55-0b5e2f1b7a10",
                "cursor": None,
                "mutations": [
                    {
                        "mid": 1,
                        "table": "accounts",
                        "id": account_id,
                        "op": "upsert",
                        "fields": {"phone": "+33 4 00 00 00 00"},
                        "base_seq": None,
                        "hlc": [yesterday, 0],
                    }
                ],
            }
        )
        assert response.status_code == 200, response.text
        assert response.json()["ack"]["results"][0]["status"] == "merged"
        return {"account": account_id, "visit": visit["id"], "task": task["id"]}
    finally:
        await alice.close()
        await bob.close()


async def check_screen(app: App, artifacts: Path, name: str, *visible: str) -> None:
    for testid in visible:
        await expect(app.tid(testid).first).to_be_visible()
    width = await app.scroll_width()
    assert width <= PHONE["width"], f"{name}: the page is {width} px wide"
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        await app.page.screenshot(path=artifacts / f"screen-{name}-{scheme}.png")
        low = await app.low_contrast()
        assert not low, f"{name} ({scheme}): text below WCAG AA contrast: {low}"
        # Every rule in light; contrast again in dark.
        rules = ["color-contrast"] if scheme == "dark" else None
        await check_axe(app.page, f"{name}-{scheme}", artifacts, rules)
    await app.page.emulate_media(color_scheme="light")


async def test_main_screens_fit_a_phone(server: Server, phones: Phones, artifacts: Path) -> None:
    ids = await seed(server)
    app = await phones.open(
        server.url, permissions=["geolocation"], geolocation={"latitude": LAT, "longitude": LNG}
    )

    response = await app.open()
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
    ):
        assert directive in csp, f"CSP lacks {directive!r}: {csp!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers.get("content-type") == "text/html; charset=utf-8"
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"

    await app.expect_screen("login")
    await check_screen(app, artifacts, "login", "login-form", "login-username", "login-submit")

    await app.login("alice")
    await app.synced()
    await expect(app.tid("nav-conflicts-count")).to_have_text("1")
    today_task = app.page.locator(f'[data-testid=today-tasks] [data-id="{ids["task"]}"]')
    await expect(today_task).to_be_visible()
    await check_screen(app, artifacts, "today", "today-tasks", "today-visits", "visit-row")

    await app.accounts.open()
    await expect(app.tid("account-count")).to_have_text("1 account")
    await check_screen(app, artifacts, "accounts", "account-search", "account-row")

    await app.accounts.open_account(ids["account"])
    await check_screen(
        app,
        artifacts,
        "account",
        "account-phone",
        "account-address",
        "contact-row",
        "visit-row",
        "note-row",
        "task-row",
        "deal-row",
        "account-conflicts",
    )

    await app.visit.open(ids["visit"])
    await expect(app.visit.verification()).to_have_attribute("data-verification", "verified")
    await check_screen(app, artifacts, "visit", "visit-distance", "visit-summary-text", "note-row")

    await app.account.open(ids["account"])
    await app.account.log_visit()
    await check_screen(
        app,
        artifacts,
        "visit-new",
        "visit-checkin",
        "visit-outcome",
        "followup-title",
        "visit-save",
    )

    await app.tasks.open()
    await expect(app.tasks.row(ids["task"])).to_be_visible()
    await check_screen(app, artifacts, "tasks", "task-count", "task-done", "task-snooze")

    await app.conflicts.open()
    await expect(app.tid("conflict-count")).to_have_text("1 unresolved")
    await check_screen(
        app,
        artifacts,
        "conflicts",
        "conflict-row",
        "conflict-kept",
        "conflict-lost",
        "conflict-keep-mine",
        "conflict-keep-theirs",
    )

    nearby = NearbyScreen(app)
    await nearby.open()
    await expect(nearby.row(ids["account"])).to_be_visible()
    await check_screen(app, artifacts, "nearby", "nearby-map", "nearby-row", "nearby-directions")

    await app.tid("nav-settings").click()
    await check_screen(app, artifacts, "me", "me-username", "me-client-id", "logout-button")


async def test_a_screen_opened_after_new_rows_is_not_drawn_again(
    server: Server, phones: Phones
) -> None:
    """New rows on one screen (a sync's end redraws it 150 ms later), then a tap to the
    next: that screen reads them as it is drawn, and is not drawn again after, when the
    rep may already have tapped on it (a manager's "Exported." was wiped so, under load)."""
    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    try:
        account = await alice.create("accounts", name="Bakery Martin", city="Lyon")
    finally:
        await alice.close()
    app = await phones.signed_in(server.url, "alice", controlled=False)
    await app.go("#/today")
    still: bool = await app.page.evaluate(
        """async (route) => {
          const { emit } = await import("/js/events.js");
          emit("data", { local: true }, { local: true }); // Today is live: redraw in 150 ms
          location.hash = route;
          const frame = () => new Promise((r) => requestAnimationFrame(r));
          while (document.body.dataset.screen !== "account") await frame();
          const first = document.querySelector("[data-testid=account-screen]");
          await new Promise((r) => setTimeout(r, 600));
          return document.contains(first);
        }""",
        f"#/account/{account['id']}",
    )
    assert still, "the account screen was drawn again"
