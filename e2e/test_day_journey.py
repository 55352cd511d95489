"""Issue 17's journey at 360 px, all of it offline: a rep plans three visits from the map's
popups, orders them from where she is, checks in and out at each with a photo, then comes
back into coverage, and everything reaches the server exactly once: three visits, three
attachments, three photos' bytes, the planned visits done, nothing twice."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

from geographiclib.geodesic import Geodesic
from playwright.async_api import Request, expect

from e2e.conftest import Server
from e2e.nearby_pages import NearbyScreen
from e2e.pages import PHONE, Phones, Rest, TodayScreen
from e2e.test_attachments import KEPT, camera_photo, pending, stored, until

HERE = {"latitude": 45.7640, "longitude": 4.8357, "accuracy": 10}
# (name, metres from the rep, bearing): apart enough to be three pins, listed out of order.
SHOPS = [("Quincaillerie Far", 3_500, 90), ("Tabac Near", 1_200, 200), ("Café Middle", 2_400, 330)]


def point_at(metres: float, bearing: float) -> tuple[float, float]:
    end = Geodesic.WGS84.Direct(HERE["latitude"], HERE["longitude"], bearing, metres)
    return end["lat2"], end["lon2"]


def database_rows(server: Server, sql: str) -> list[tuple[object, ...]]:
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


async def test_a_day_planned_driven_and_recorded_offline_reaches_the_server_once(
    server: Server, phones: Phones, tmp_path: Path, artifacts: Path
) -> None:
    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    shops: dict[str, dict[str, object]] = {}
    try:
        for name, metres, bearing in SHOPS:
            lat, lng = point_at(metres, bearing)
            shops[name] = await alice.create("accounts", name=name, lat=lat, lng=lng)
        expected = await alice.client.post(
            "/api/route",
            json={
                "start": {"lat": HERE["latitude"], "lng": HERE["longitude"]},
                "stops": [shops[name]["id"] for name, _, _ in SHOPS],
            },
        )
        assert expected.status_code == 200, expected.text
        best_order = expected.json()["order"]
    finally:
        await alice.close()
    by_id = {str(s["id"]): (name, s) for name, s in shops.items()}
    photos = [camera_photo(tmp_path / f"IMG_{n}.jpg", n) for n in range(3)]

    app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
    uploads: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "PUT" and "/api/attachments/blobs/" in request.url:
            uploads.append(request.url.rsplit("/", 1)[1])

    app.page.on("request", on_request)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()
    await app.synced()
    await app.set_offline(True)

    # Plan: a tap on each shop's pin, "Plan visit" in its popup (the phone's own write).
    nearby = NearbyScreen(app)
    await nearby.open()
    await nearby.expect_source("phone")
    box = nearby.tid("nearby-map")
    await expect(box).to_have_attribute("data-accounts", "3")
    for n, (name, _, _) in enumerate(SHOPS):
        # A pin can lie under the map's 44 px zoom buttons once a popup has panned the map:
        # tapped as the pin's own click (what is tested is planning from the popup).
        await box.locator(f'.map-pin[title="{name}"]').dispatch_event("click")
        popup = box.locator(".leaflet-popup", has_text=name)
        plan = popup.get_by_test_id("map-plan-visit")
        await expect(plan).to_have_text("Plan visit")
        await plan.click()
        await expect(plan).to_have_attribute("data-planned", "yes")
        await expect(plan).to_be_disabled()
        if n == 0:
            assert await app.scroll_width() <= PHONE["width"]
            await app.page.screenshot(path=artifacts / "screen-map-plan-visit.png")
        await popup.locator(".leaflet-popup-close-button").click()
        await expect(popup).to_have_count(0)
    # Opened again, it is already in the plan: no second planned visit.
    await box.locator(f'.map-pin[title="{SHOPS[0][0]}"]').dispatch_event("click")
    again = box.locator(".leaflet-popup", has_text=SHOPS[0][0]).get_by_test_id("map-plan-visit")
    await expect(again).to_have_attribute("data-planned", "yes")
    tasks = [t for t in await app.rows("tasks") if t.get("kind") == "visit"]
    assert sorted(t["account_id"] for t in tasks) == sorted(by_id)
    assert all(t["assignee_id"] and not t["done"] for t in tasks)

    # Today: the three planned visits, ordered from where she is (the server's order).
    today = TodayScreen(app)
    await today.open()
    await expect(app.tid("today-tasks").get_by_test_id("task-row")).to_have_count(3)
    titles = await app.tid("today-tasks").get_by_test_id("task-account").all_inner_texts()
    assert sorted(titles) == sorted(name for name, _, _ in SHOPS)  # each row: the account
    await expect(app.tid("today-route")).to_contain_text("Route (3 stops)")
    await app.tid("today-route-order").click()
    await expect(app.tid("today-route-summary")).to_contain_text("From where you are")
    stops = app.tid("today-route-stop")
    await expect(stops).to_have_count(3)
    order = [await stops.nth(i).get_attribute("data-id") for i in range(3)]
    assert order == best_order
    await expect(app.tid("today-route-map").locator(".route-stop")).to_have_count(3)
    await app.page.screenshot(path=artifacts / "screen-day-ordered.png", full_page=True)

    # At each shop in that order: check in there, a photo, the talk, check out.
    visit_ids = []
    for n, account_id in enumerate(order):
        assert account_id
        name, shop = by_id[account_id]
        await app.context.set_geolocation(
            {"latitude": shop["lat"], "longitude": shop["lng"], "accuracy": 15}
        )
        await app.account.open(account_id)
        await app.account.log_visit()
        await app.visit_form.check_in()
        await app.tid("attach-photo-input").set_input_files(str(photos[n]))
        await expect(app.tid("attach-held-item")).to_have_count(1)
        await app.visit_form.fill(outcome="met", summary=f"Stop {n + 1}: {name}")
        visit_ids.append(await app.visit_form.save())  # saving is the check-out
        await expect(app.tid("visit-ended")).to_be_visible()
        thumbs = app.tid("visit-attachments").get_by_test_id("attachment-thumb")
        await expect(thumbs).to_have_count(1)
    await today.open()
    await expect(app.tid("today-tasks-empty")).to_be_visible()  # the plan made
    kept = await app.page.evaluate(KEPT)
    assert len(kept) == 3 and all(k["pending"] == 1 for k in kept)
    assert uploads == []

    # Back in coverage: the app sends it all by itself.
    await app.set_offline(False)
    await until(lambda: pending(app), 0, timeout_s=60)
    await until(app.pending_count, 0, timeout_s=30)
    await app.synced()  # once more: nothing is sent twice
    await asyncio.sleep(1)
    assert sorted(uploads) == sorted({k["sha256"] for k in kept})  # each photo PUT once

    alice = await Rest.login(server.url, "alice")
    try:
        visits = await alice.list("visits")
        assert sorted(v["id"] for v in visits) == sorted(visit_ids)
        for visit in visits:
            assert visit["verification"] == "verified", visit
            assert visit["ended_at"] and visit["started_at"] <= visit["ended_at"]
        rows = await alice.list("attachments")
        assert sorted(r["visit_id"] for r in rows) == sorted(visit_ids)
        assert all(r["uploaded"] for r in rows)
        planned = [t for t in await alice.list("tasks") if t["kind"] == "visit"]
        assert len(planned) == 3 and all(t["done"] for t in planned)
        assert sorted(t["account_id"] for t in planned) == sorted(by_id)
    finally:
        await alice.close()
    files = stored(server)
    assert sorted(files) == sorted(r["sha256"] for r in rows)
    for name, data in files.items():
        assert hashlib.sha256(data).hexdigest() == name
    held = database_rows(server, "SELECT sha256, bytes FROM attachment_blobs ORDER BY sha256")
    assert held == sorted((name, len(data)) for name, data in files.items())
    counts = database_rows(
        server,
        "SELECT (SELECT count(*) FROM visits), (SELECT count(*) FROM attachments),"
        " (SELECT count(*) FROM tasks)",
    )
    assert counts == [(3, 3, 3)]
