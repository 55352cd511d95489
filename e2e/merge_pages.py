"""Page objects for the manager's duplicates and merge screens (`#/duplicates`, `#/merge`,
docs/pwa.md). Waits are on states the screens set."""

from __future__ import annotations

from playwright.async_api import Locator, expect

from e2e.pages import App


class MergeScreens:
    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)

    async def open_duplicates(self) -> None:
        """From the Team screen's link; until the server's groups are drawn."""
        await self.tid("nav-team").click()
        await self.app.expect_screen("team")
        await self.tid("team-duplicates-link").click()
        await self.app.expect_screen("duplicates")
        await expect(self.tid("duplicate-groups").or_(self.tid("duplicates-none"))).to_be_visible()

    def group(self, *ids: str) -> Locator:
        return self.app.page.locator(f'[data-testid=duplicate-group][data-ids="{",".join(ids)}"]')

    async def open_group(self, *ids: str) -> None:
        await self.group(*ids).get_by_test_id("duplicate-group-open").click()
        await self.app.expect_screen("merge")
        await expect(self.tid("merge-confirm")).to_be_visible()

    async def keep(self, record_id: str) -> None:
        await self.tid("merge-survivors").locator(f'input[value="{record_id}"]').check()

    def field(self, name: str) -> Locator:
        return self.app.page.locator(f'[data-testid=merge-field][data-field="{name}"]')

    async def choose(self, name: str, record_id: str) -> None:
        await self.field(name).locator(f'input[value="{record_id}"]').check()

    async def chosen(self, name: str) -> str:
        value: str = await self.field(name).locator("input:checked").get_attribute("value") or ""
        return value

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = await self.tid("merge-move-count").evaluate_all(
            "(els) => Object.fromEntries(els.map((e) =>"
            " [e.dataset.table, Number(e.dataset.count)]))"
        )
        return counts

    async def confirm(self) -> None:
        await self.tid("merge-confirm").click()
        await expect(self.tid("merge-status")).to_have_attribute("data-state", "merged")

    async def undo(self) -> None:
        await self.tid("merge-undo").click()
        await expect(self.tid("merge-status")).to_have_attribute("data-state", "undone")
