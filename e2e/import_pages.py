"""Page object for the Import and export screen (`#/import`, docs/pwa.md). Waits are on
states the screen sets."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Download, Locator, expect

from e2e.pages import App


class ImportScreen:
    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)

    async def open(self) -> None:
        """From the Team tab, as a manager finds it."""
        await self.tid("nav-team").click()
        await self.app.expect_screen("team")
        await self.tid("team-import-link").click()
        await self.app.expect_screen("import")
        await expect(self.tid("import-form")).to_be_visible()

    async def check(self, name: str, content: bytes, mime: str, table: str = "accounts") -> None:
        """Pick the file and check it (the dry run), until its preview is drawn."""
        await self.tid("import-table").select_option(table)
        await self.tid("import-file").set_input_files(
            files=[{"name": name, "mimeType": mime, "buffer": content}]
        )
        await self.tid("import-check").click()
        await expect(self.tid("import-preview")).to_be_visible()

    async def counts(self, where: str) -> dict[str, int]:
        """The counts shown (`import-preview-counts` or `import-done-counts`)."""
        found: dict[str, str] = (
            await self.tid(where)
            .get_by_test_id("import-count")
            .evaluate_all(
                "(els) => Object.fromEntries(els.map((e) => [e.dataset.count, e.dataset.value]))"
            )
        )
        return {key: int(value) for key, value in found.items()}

    async def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = await self.tid("import-error").evaluate_all(
            "(els) => els.map((e) => ({row: Number(e.dataset.row), column: e.dataset.column,"
            " error: e.dataset.error, text: e.textContent}))"
        )
        return errors

    async def confirm(self) -> None:
        """Import for real, until the job has ended."""
        await self.tid("import-confirm").click()
        await expect(self.tid("import-summary")).to_have_attribute("data-state", "done")

    async def revert(self) -> None:
        await self.tid("import-revert").click()
        await self.tid("import-revert-confirm").click()
        await expect(self.tid("import-reverted")).to_be_visible()

    async def export(self, testid: str) -> tuple[str, bytes]:
        """Download an export; its file name and bytes."""
        async with self.app.page.expect_download() as waiting:
            await self.tid(testid).click()
        download: Download = await waiting.value
        path = await download.path()
        return download.suggested_filename, path.read_bytes()
