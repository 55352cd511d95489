"""Page object for the Nearby screen (docs/pwa.md): the rep's position, the list by
distance, the map and "Capture a prospect here". Waits are on states the screen sets."""

from __future__ import annotations

import re

from playwright.async_api import Locator, expect

from e2e.pages import App


class NearbyScreen:
    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)

    async def open(self) -> None:
        """Through the bottom navigation; until the position is found and the list drawn."""
        await self.tid("nav-nearby").click()
        await self.app.expect_screen("nearby")
        await self.located()

    async def located(self) -> None:
        await expect(self.tid("nearby-position")).to_have_attribute("data-state", "located")
        await expect(self.tid("nearby-count")).to_have_attribute("data-count", re.compile(r"\d+"))

    async def expect_source(self, source: str) -> None:
        """`server` (GET /api/nearby) or `phone` (measured offline, approximate)."""
        await expect(self.tid("nearby-source")).to_have_attribute("data-source", source)

    def rows(self) -> Locator:
        return self.tid("nearby-row")

    async def scroll_to_the_end(self) -> None:
        """The list draws its first rows, then the next ones as its end scrolls near
        (js/chunks.js): scrolls to its end until every row is drawn."""
        more = self.tid("nearby-list").locator(".list-more")
        for _ in range(20):
            if not await more.count():
                return
            await more.evaluate("(end) => end.scrollIntoView({ block: 'end' })")
            await self.app.page.evaluate(
                "() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 100)))"
            )
        raise AssertionError("the nearby list never drew its last row")

    def row(self, account_id: str) -> Locator:
        return self.app.page.locator(f'[data-testid=nearby-row][data-id="{account_id}"]')

    async def names(self) -> list[str]:
        return await self.tid("nearby-name").all_inner_texts()

    async def distances(self) -> list[int]:
        values = await self.rows().evaluate_all("(rows) => rows.map((r) => r.dataset.distance)")
        return [int(v) for v in values]

    async def filter_status(self, status: str) -> None:
        await self.tid("nearby-status-filter").select_option(status)

    def map_markers(self) -> Locator:
        """Accounts drawn one by one (not in a cluster) in the map's view."""
        return self.tid("nearby-map").locator(".map-pin")

    def map_clusters(self) -> Locator:
        return self.tid("nearby-map").locator(".map-cluster")

    async def expect_basemap(self) -> None:
        """The offline basemap's countries are drawn (docs/map.md)."""
        await expect(self.tid("nearby-map")).to_have_attribute("data-basemap", "world")
        await expect(self.tid("nearby-map").locator("path.basemap-land").first).to_be_attached()

    async def capture(self, name: str) -> None:
        await self.tid("nearby-capture").click()
        await expect(self.tid("capture-form")).to_be_visible()
        await self.tid("capture-name").fill(name)
        await self.tid("capture-save").click()
        await expect(self.tid("capture-form")).to_be_hidden()

    async def colour_by(self, mode: str) -> None:
        """`status`, or a number of days (30, 60, 90): accounts not visited in them stand out."""
        await self.tid("map-colour").select_option(mode)
        await expect(self.tid("map-legend")).to_have_attribute("data-mode", mode)

    async def legend(self) -> list[str]:
        keys = await self.tid("map-legend-item").evaluate_all(
            "(items) => items.map((i) => i.dataset.key)"
        )
        return [str(k) for k in keys]

    def pins(self, colour: str) -> Locator:
        """Accounts drawn one by one in one colour: a status, or recent / due / never."""
        return self.tid("nearby-map").locator(f".map-pin.map-{colour}")
