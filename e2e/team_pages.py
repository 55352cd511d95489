"""Page objects for the manager's screens (docs/pwa.md): Team (`#/team`), today's check-ins
(`#/team/checkins`) and Reassign (`#/reassign`). Waits are on states the screens set."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Locator, expect

from e2e.pages import App

REPORT_URL = re.compile(r"/api/reports/team\?")


class TeamScreen:
    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)

    async def open(self) -> dict[str, str]:
        """Through the Team tab; until the figures from the server are drawn. The report
        request's query (`from`, `to`, `not_visited_days`)."""
        async with self.app.page.expect_request(REPORT_URL) as asked:
            await self.tid("nav-team").click()
        await self.app.expect_screen("team")
        await self.expect_source("server")
        return query_of((await asked.value).url)

    async def expect_source(self, source: str) -> None:
        """`server`, `cache` (the last report kept, offline), `none` or `refused`."""
        await expect(self.tid("team-source")).to_have_attribute("data-source", source)

    async def choose(self, preset: str, **dates: str) -> dict[str, str]:
        """Pick a range (`this_week`, `last_week`, `this_month`, or `custom` with `from_`
        and `to`); the query of the report it asked for."""
        async with self.app.page.expect_request(REPORT_URL) as asked:
            await self.tid("team-range").select_option(preset)
            if preset == "custom":
                await self.tid("team-from").fill(dates["from_"])
                await self.tid("team-to").fill(dates["to"])
                await self.tid("team-apply").click()
        await self.expect_source("server")
        return query_of((await asked.value).url)

    def rep(self, user_id: str) -> Locator:
        return self.app.page.locator(f'[data-testid=team-rep][data-id="{user_id}"]')

    async def figures(self, user_id: str) -> dict[str, str]:
        """The rep card's figures: {figure: data-value}."""
        figures = self.rep(user_id).get_by_test_id("team-rep-figure")
        values: dict[str, str] = await figures.evaluate_all(
            "(els) => Object.fromEntries(els.map((e) => [e.dataset.figure, e.dataset.value]))"
        )
        return values

    async def days(self) -> list[dict[str, Any]]:
        days: list[dict[str, Any]] = await self.tid("team-chart-day").evaluate_all(
            "(els) => els.map((e) => ({date: e.dataset.date, visits: Number(e.dataset.visits),"
            " verified_visits: Number(e.dataset.verified)}))"
        )
        return days

    async def stages(self) -> list[dict[str, Any]]:
        stages: list[dict[str, Any]] = await self.tid("team-stage").evaluate_all(
            "(els) => els.map((e) => ({stage: e.dataset.stage, deals: Number(e.dataset.deals),"
            " amount: e.dataset.amount, weighted: e.dataset.weighted}))"
        )
        return stages

    def device(self, client_id: str) -> Locator:
        return self.app.page.locator(f'[data-testid=team-device][data-id="{client_id}"]')


class ReassignScreen:
    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)

    async def select_mode(self) -> None:
        await self.app.accounts.open()
        await self.tid("account-select-mode").click()
        await expect(self.tid("account-selection")).to_be_visible()

    async def pick(self, account_id: str) -> None:
        await self.app.accounts.row(account_id).get_by_test_id("account-select").check()

    async def start(self) -> None:
        await self.tid("account-reassign").click()
        await self.app.expect_screen("reassign")
        await expect(self.tid("reassign-to")).to_be_visible()

    async def hanging(self) -> dict[str, int]:
        counts: dict[str, int] = await self.tid("reassign-hanging-count").evaluate_all(
            "(els) => Object.fromEntries("
            "els.map((e) => [e.dataset.table, Number(e.dataset.count)]))"
        )
        return counts

    async def give_to(self, user_id: str) -> None:
        await self.tid("reassign-to").select_option(user_id)
        await expect(self.tid("reassign-preview")).to_be_visible()


def query_of(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query))


class AreaScreen:
    """`#/campaign/new`: an area drawn on the map with taps, filters, and what they pick."""

    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)

    async def open_from_team(self) -> None:
        await self.tid("campaign-new").click()
        await self.app.expect_screen("campaign")
        await expect(self.tid("campaign-map").locator("path.nearby-marker").first).to_be_attached()

    async def tap(self, fx: float, fy: float) -> None:
        """A tap at a fraction of the map's width and height."""
        box = await self.tid("campaign-map").bounding_box()
        assert box is not None
        await self.app.page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)

    async def area(self) -> dict[str, Any] | None:
        """The area drawn, as the screen will send it."""
        import json

        raw = await self.tid("campaign-map").get_attribute("data-area")
        return json.loads(raw) if raw else None

    async def count(self) -> int:
        return int(await self.tid("campaign-count").get_attribute("data-count") or "0")
