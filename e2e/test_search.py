"""The accounts list finds what a rep types (issue 18), offline, on a 360 px phone: a
street, a postcode, a phone number as written, a contact's name, accents and capitals
left out; and it sorts by name, nearest, last visited and owner. A long list holds only
the rows on screen, and its last account can be scrolled to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from e2e.a11y import check_axe
from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest

BELLECOUR = {"latitude": 45.7578, "longitude": 4.832}
FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


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
    app = await phones.signed_in(
        server.url, "alice", geolocation=BELLECOUR, permissions=["geolocation"], controlled=False
    )
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


async def test_the_list_holds_only_the_rows_on_screen_and_reaches_the_last(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    """A big territory's list (issue 18): every account can be scrolled to, while the page
    holds only a window of rows; at 200% text the rows keep one height and stay apart."""
    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    total = 400
    try:
        mutations = [
            {
                "mid": i + 1, "table": "accounts", "id": str(uuid.uuid4()), "op": "upsert",
                "fields": {"name": f"Account {i + 1:03d}", "city": "Lyon", "postal_code": "69003",
                           "owner_id": alice.user["id"]},
                "base_seq": None, "hlc": [1_700_000_000_000, i],
            }
            for i in range(total)
        ]  # fmt: skip
        response = await alice.sync(
            {"protocol": 1, "client_id": str(uuid.uuid4()), "cursor": None, "pull_limit": 1,
             "mutations": mutations}
        )  # fmt: skip
        assert response.status_code == 200, response.text
    finally:
        await alice.close()
    app = await phones.signed_in(server.url, "alice", controlled=False)
    await app.accounts.open()
    await expect(app.tid("account-count")).to_have_text(f"{total} accounts")
    rows = app.tid("account-row")
    await expect(rows.first).to_have_attribute("aria-setsize", str(total))
    await expect(app.tid("account-row-name").first).to_have_text("Account 001")
    assert await rows.count() < 60, "the page holds only the rows near the screen"

    await app.page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    last = app.tid("account-row-name").filter(has_text=f"Account {total:03d}")
    await expect(last).to_be_in_viewport()
    assert await rows.count() < 60
    await expect(app.tid("account-row-name").filter(has_text="Account 001")).to_have_count(0)
    assert await app.scroll_width() <= PHONE["width"]
    await app.page.screenshot(path=artifacts / "accounts-virtual-end.png")
    await check_axe(app.page, "accounts-virtual", artifacts)

    # Back up to the middle by the scroll bar's position: the rows there are drawn.
    await app.page.evaluate("() => window.scrollTo(0, document.body.scrollHeight / 2)")
    await expect(app.tid("account-row-name").filter(has_text="Account 200")).to_be_attached()

    # At 200% text a row is taller, and rows still do not overlap.
    await app.page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    # The first scroll measures the taller rows (the list grows), the second reaches its end.
    for _ in range(2):
        await app.page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        await app.page.evaluate(FRAMES)
    await expect(last).to_be_in_viewport()
    boxes = await rows.evaluate_all(
        "(rows) => rows.map((r) => { const b = r.getBoundingClientRect();"
        " const t = r.querySelector('[data-testid=account-row-name]').getBoundingClientRect();"
        " return [b.top, b.bottom, t.bottom]; })"
    )
    for (_top, bottom, text_bottom), (next_top, _, _) in zip(boxes, boxes[1:], strict=False):
        assert bottom <= next_top + 0.5 and text_bottom <= bottom + 0.5, boxes
    await app.page.screenshot(path=artifacts / "accounts-virtual-text200.png")
    await last.click()
    await expect(app.tid("account-details")).to_be_visible()
