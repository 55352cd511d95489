"""Today's "Order my stops": the day's task stops ordered on the phone, offline, from its
position, the same order and length as the server's POST /api/route, with directions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from geographiclib.geodesic import Geodesic
from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, Phones, Rest, TodayScreen
from geo.route import plan_route

HERE = {"latitude": 45.7640, "longitude": 4.8357, "accuracy": 10}
# (name, metres away, bearing), listed in an order that zigzags across town.
STOPS = [
    ("Boulangerie Nord", 3_000, 10),
    ("Pharmacie Sud", 2_500, 190),
    ("Garage Est", 4_000, 95),
    ("Fleuriste Nord-Est", 5_000, 40),
    ("Tabac Ouest", 3_500, 270),
    ("Épicerie Sud-Est", 4_500, 140),
]


def point_at(metres: float, bearing: float) -> tuple[float, float]:
    end = Geodesic.WGS84.Direct(HERE["latitude"], HERE["longitude"], bearing, metres)
    return end["lat2"], end["lon2"]


async def test_order_my_stops_offline_matches_the_server(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    alice = await Rest.login(server.url, "alice")
    due = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    ids = []
    try:
        for name, metres, bearing in STOPS:
            lat, lng = point_at(metres, bearing)
            account = await alice.create("accounts", name=name, lat=lat, lng=lng)
            ids.append(account["id"])
            await alice.create("tasks", title=f"See {name}", account_id=account["id"], due_at=due)
        # Suggestions: mine, not visited for a month, near a stop; the rest are not.
        lat, lng = point_at(3_400, 12)  # 400 m from Boulangerie Nord
        await alice.create("accounts", name="Vieux client", lat=lat, lng=lng)
        lat, lng = point_at(3_300, 8)
        seen = await alice.create("accounts", name="Vu hier", lat=lat, lng=lng)
        yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        await alice.create("visits", account_id=seen["id"], started_at=yesterday)
        lat, lng = point_at(25_000, 10)
        await alice.create("accounts", name="Trop loin", lat=lat, lng=lng)
        nowhere = await alice.create("accounts", name="Sans adresse")
        await alice.create("tasks", title="Call them", account_id=nowhere["id"], due_at=due)
        start = {"lat": HERE["latitude"], "lng": HERE["longitude"]}
        response = await alice.client.post("/api/route", json={"start": start, "stops": ids})
        assert response.status_code == 200, response.text
        expected = response.json()
    finally:
        await alice.close()

    app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
    today = TodayScreen(app)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()
    await app.synced()
    await today.open()

    route = app.tid("today-route")
    await expect(route).to_contain_text(f"Route ({len(STOPS)} stops)")
    await expect(app.tid("today-route-placeless")).to_contain_text("Sans adresse")
    suggested = app.tid("today-suggestion")
    await expect(suggested).to_have_count(1)
    await expect(suggested).to_contain_text("Vieux client")
    await expect(suggested).to_contain_text("from Boulangerie Nord")
    await expect(suggested).to_contain_text("never visited")

    await app.set_offline(True)
    await app.tid("today-route-order").click()
    summary = app.tid("today-route-summary")
    await expect(summary).to_contain_text("From where you are")
    await expect(summary).to_contain_text("less than in the order listed")
    metres = int(await summary.get_attribute("data-metres") or "0")
    assert abs(metres - expected["distance_m"]) <= 1
    stops = app.tid("today-route-stop")
    await expect(stops).to_have_count(len(STOPS))
    assert [await stops.nth(i).get_attribute("data-id") for i in range(len(STOPS))] == expected[
        "order"
    ]
    href = await app.tid("today-route-directions").first.get_attribute("href")
    assert href and href.startswith("geo:")
    # On an iPhone, whose Safari opens no geo: link, Apple Maps' directions.
    iphone = await app.page.evaluate(
        """async () => (await import("/js/map.js")).directionsHref({lat: 45.75, lng: 4.85,
            name: "Café & Co"}, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")"""
    )
    assert iphone == "https://maps.apple.com/?daddr=45.75,4.85&q=Caf%C3%A9%20%26%20Co"

    # The route on a map, offline although no map was opened before: the start, a line and
    # the stops numbered in order, on the basemap the service worker kept at install.
    route_map = app.tid("today-route-map")
    await expect(route_map).to_have_attribute("data-stops", str(len(STOPS)))
    await expect(route_map).to_have_attribute("data-basemap", "world")
    await expect(route_map.locator("path.route-line")).to_have_count(1)
    numbers = route_map.locator(".route-stop")
    await expect(numbers).to_have_count(len(STOPS))
    assert await numbers.all_inner_texts() == [str(i + 1) for i in range(len(STOPS))]

    # Reordered by hand: the first stop moved down, the lengths measured again.
    positions = dict(zip(ids, (point_at(m, b) for _, m, b in STOPS), strict=True))
    await app.tid("today-route-down").first.click()
    by_hand = [expected["order"][1], expected["order"][0], *expected["order"][2:]]
    await expect(stops.first).to_have_attribute("data-id", by_hand[0])
    assert [await stops.nth(i).get_attribute("data-id") for i in range(len(STOPS))] == by_hand
    path = [(HERE["latitude"], HERE["longitude"]), *(positions[i] for i in by_hand)]
    legs = [Geodesic.WGS84.Inverse(*a, *b)["s12"] for a, b in zip(path, path[1:], strict=False)]
    await expect(summary).to_contain_text("more than the shortest")
    metres = int(await summary.get_attribute("data-metres") or "0")
    assert abs(metres - sum(legs)) <= 1
    assert metres > expected["distance_m"]
    await expect(numbers).to_have_count(len(STOPS))  # drawn again, in the new order
    focused = await app.page.evaluate("document.activeElement.dataset.testid")
    assert focused in ("today-route-up", "today-route-down")
    await app.tid("today-route-up").nth(1).click()
    await expect(summary).to_contain_text("as short as the shortest")
    assert [await stops.nth(i).get_attribute("data-id") for i in range(len(STOPS))] == expected[
        "order"
    ]

    assert await app.scroll_width() <= PHONE["width"]
    await app.page.screenshot(path=artifacts / "screen-today-route.png", full_page=True)
    # With the phone's text size turned up (the app sizes everything in rem).
    await app.page.evaluate("document.documentElement.style.fontSize = '200%'")
    await route.screenshot(path=artifacts / "screen-today-route-text200.png")
    assert await app.scroll_width() <= PHONE["width"]

    # A suggestion planned in one tap, offline: a planned visit due today, on the route.
    await app.page.evaluate("document.documentElement.style.fontSize = ''")
    await suggested.get_by_test_id("today-suggestion-plan").click()
    await expect(route).to_contain_text(f"Route ({len(STOPS) + 1} stops)")
    await expect(suggested).to_have_count(0)
    row = app.tid("today-tasks").get_by_test_id("task-row").filter(has_text="Vieux client")
    await expect(row.get_by_test_id("task-title")).to_have_text("Planned visit")
    [planned] = [t for t in await app.rows("tasks") if t.get("kind") == "visit"]
    assert planned["title"] == "Visit Vieux client" and planned["assignee_id"]


async def test_the_phone_orders_like_the_server_up_to_fifty_stops(
    server: Server, phones: Phones
) -> None:
    """pwa/js/route.js against geo/route.py on the same stops: the same best length up to
    10 stops, within 5% of the server's beyond (in practice the same)."""
    app = await phones.open(server.url)
    await app.open()
    rng = random.Random(17)
    start = (45.764, 4.8357)
    for count, back in [(3, False), (9, True), (10, False), (25, False), (50, True)]:
        stops = [(45.7 + rng.random() * 0.2, 4.7 + rng.random() * 0.3) for _ in range(count)]
        phone = await app.page.evaluate(
            """async ([start, stops, back]) => {
                const { planRoute } = await import("/js/route.js");
                const r = planRoute({ lat: start[0], lng: start[1] },
                    stops.map(([lat, lng]) => ({ lat, lng })), { backToStart: back });
                return { order: r.order, distance: r.distanceM, given: r.asGivenM };
            }""",
            [start, stops, back],
        )
        server_route = plan_route(start, stops, back_to_start=back)
        assert sorted(phone["order"]) == list(range(count))
        assert abs(phone["given"] - server_route.as_given_m) < 0.01
        if count <= 10:
            assert abs(phone["distance"] - server_route.distance_m) < 0.01
        else:
            assert phone["distance"] <= server_route.distance_m * 1.05
