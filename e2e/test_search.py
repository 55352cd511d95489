"""The accounts list finds what a rep types (issue 18), offline, on a 360 px phone: a
street, a postcode, a phone number as written, a contact's name, accents and capitals
left out; and it sorts by name, nearest, last visited and owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest

BELLECOUR = {"latitude": 45.7578, "longitude": 4.832}


async def seed(server: Server) -> dict[str, str]:
    server.add_user("alice")
    server.add_user("bruno")
    alice = await Rest.login(server.url, "alice")
    bruno = await Rest.login(server.url, "bruno")
    try:
        now = datetime.now(UTC)
        halles = await alice.create(
            "accounts", name="Les Halles de Lyon", street="102 Cours Lafayette",
            postal_code="69003", city="Lyon", phone="+33 4 78 62 39 33",
            lat=45.7631, lng=4.851, owner_id=alice.user["id"],
        )  # fmt: skip
        epicerie = await bruno.create(
            "accounts", name="Épicerie Dupré", street="3 place Jean Jaurès",
            postal_code="42000", city="Saint-Étienne", phone="04 77 12 34 56",
            lat=45.4397, lng=4.3872, owner_id=bruno.user["id"],
        )  # fmt: skip
        droguerie = await alice.create(
            "accounts", name="Droguerie Martin", city="Villeurbanne", postal_code="69100",
            lat=45.7719, lng=4.8902, owner_id=alice.user["id"],
        )  # fmt: skip
        await alice.create("contacts", account_id=droguerie["id"], name="Camille Roux")
        for account, days in ((halles, 9), (epicerie, 2)):
            started = now - timedelta(days=days)
            await alice.create(
                "visits", account_id=account["id"], started_at=started.isoformat(),
                ended_at=(started + timedelta(minutes=20)).isoformat(), outcome="met",
            )  # fmt: skip
        return {"halles": halles["id"], "epicerie": epicerie["id"], "droguerie": droguerie["id"]}
    finally:
        await alice.close()
        await bruno.close()


async def names_shown(app: App) -> list[str]:
    return await app.tid("account-row-name").all_inner_texts()


async def search(app: App, text: str, *expected: str) -> None:
    await app.tid("account-search").fill(text)
    await expect(app.tid("account-row-name")).to_have_text(list(expected))


async def test_search_and_sort_the_accounts_offline(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    await seed(server)
    app = await phones.open(server.url, geolocation=BELLECOUR, permissions=["geolocation"])
    await app.open()
    await app.login("alice")
    await app.synced()
    await app.set_offline(True)
    await app.accounts.open()

    await search(app, "lafayette", "Les Halles de Lyon")
    await search(app, "69003", "Les Halles de Lyon")
    await search(app, "69", "Droguerie Martin", "Les Halles de Lyon")
    await search(app, "691", "Droguerie Martin")
    await search(app, "04 78 62", "Les Halles de Lyon")
    await search(app, "0477123456", "Épicerie Dupré")
    await search(app, "camille", "Droguerie Martin")
    await search(app, "SAINT ETIENNE", "Épicerie Dupré")
    await search(app, "jaures", "Épicerie Dupré")
    await search(app, "epicerie dupre", "Épicerie Dupré")
    await search(app, "lyon nowhere")
    await expect(app.tid("account-count")).to_have_text("0 accounts")
    await search(app, "", "Droguerie Martin", "Épicerie Dupré", "Les Halles de Lyon")

    sort = app.tid("account-sort")
    await sort.select_option("visited")
    await expect(app.tid("account-row-name")).to_have_text(
        ["Épicerie Dupré", "Les Halles de Lyon", "Droguerie Martin"]
    )
    await sort.select_option("owner")
    await expect(app.tid("account-row-name")).to_have_text(
        ["Droguerie Martin", "Les Halles de Lyon", "Épicerie Dupré"]
    )
    # From Bellecour: the 3rd arrondissement, Villeurbanne, then Saint-Étienne (an account
    # without a position would come last: tests/unit/test_pwa_search.py).
    await sort.select_option("nearest")
    await expect(app.tid("account-row-name")).to_have_text(
        ["Les Halles de Lyon", "Droguerie Martin", "Épicerie Dupré"]
    )
    assert await app.scroll_width() <= PHONE["width"]
    await app.page.screenshot(path=artifacts / "search-accounts-nearest.png")
    # The order and the search stay in the link, and come back with it.
    await app.tid("account-search").fill("lyon")
    await app.tid("nav-today").click()
    await app.page.go_back()
    await app.expect_screen("accounts")
    await expect(sort).to_have_value("nearest")
    await expect(app.tid("account-row-name")).to_have_text(["Les Halles de Lyon"])

    # The task form's picker finds what the list finds.
    await app.go("#/task/new")
    await app.tid("account-picker-search").fill("camille")
    option = app.tid("account-picker-option")
    await expect(option).to_have_count(1)
    await expect(option).to_contain_text("Droguerie Martin")
    await expect(option).to_contain_text("69100 Villeurbanne")
