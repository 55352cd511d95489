"""The sync worker (js/sync-worker.js): a pull that pushes nothing, a first sync's pages,
is fetched and stored off the page's main thread. What the rep writes meanwhile is kept
and goes out after it; the screens hear of the rows it stored."""

from __future__ import annotations

import uuid

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import Phones, Rest

PULLS_IN_WORKER = "() => performance.getEntriesByName('fieldcrm:sync-fetch').length"


async def test_a_first_sync_is_pulled_by_the_worker_and_a_write_made_meanwhile_goes_after(
    server: Server, phones: Phones
) -> None:
    server.add_user("alice", team="north")
    rest = await Rest.login(server.url, "alice")
    try:
        made = [await rest.create("accounts", name=f"Shop {i}") for i in range(3)]
        app = await phones.open(server.url)
        await app.open()
        async with app.sync_held():
            await app.login("alice")
            # The first sync's request waits on its way; the rep writes meanwhile.
            await app.expect_badge("syncing")
            mine = str(uuid.uuid4())
            await app.save("accounts", mine, name="Made during the first sync")
            await app.expect_pending(1)
        status = await app.synced()
        assert status["pending"] == 0
        # The pull went through the worker (its requests are measures on this page's
        # timeline), and stored every row; the write reached the server.
        assert await app.page.evaluate(PULLS_IN_WORKER) >= 1
        ids = {r["id"] for r in await app.rows("accounts")}
        assert ids == {a["id"] for a in made} | {mine}
        assert (await rest.get("accounts", mine))["account"]["name"] == "Made during the first sync"
        # The screens read the stores the worker wrote, not what they read before.
        await app.accounts.open()
        for account in made:
            await expect(app.accounts.row(account["id"])).to_have_count(1)
        await rest.create("accounts", name="Shop later")
        await app.synced()
        await app.go("#/accounts")
        await app.expect_screen("accounts")
        await expect(app.tid("account-row")).to_have_count(5)
    finally:
        await rest.close()
