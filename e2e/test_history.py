"""A record's History on the phone (SPEC section 11): the server's entries in words, a
colleague's change and this phone's own; offline, the history last read of a record the
phone holds, or that it needs a connection."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import App, Phones, Rest
from e2e.test_screens import check_screen


async def test_an_accounts_history_in_words(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    server.add_user("bruno", team="north")
    alice = await Rest.login(server.url, "alice")
    bruno = await Rest.login(server.url, "bruno")
    try:
        account = await alice.create("accounts", name="Boulangerie Pain d'Or", phone="0478000001")
        other = await alice.create("accounts", name="Fromagerie")
        await bruno.update("accounts", account["id"], phone="0478000002")
    finally:
        await alice.close()
        await bruno.close()
    account_id = account["id"]

    app: App = await phones.open(server.url)
    await app.open()
    await app.login("alice")
    await app.synced()
    await app.account.open(account_id)
    await app.tid("account-edit").click()
    await app.account_form.fill(phone="0478000003")
    await app.account_form.save()
    await app.synced()

    await app.account.open(account_id)
    await app.tid("account-history").click()
    await app.expect_screen("history")
    entries = app.tid("history-entry")
    await expect(entries).to_have_count(3)
    # Newest first: this phone's edit, Bruno's from the web, Alice's creation.
    await expect(entries.nth(0)).to_contain_text(
        "You changed the phone from “0478000002” to “0478000003”"
    )
    await expect(entries.nth(0)).to_contain_text("from this phone")
    await expect(entries.nth(1)).to_contain_text(
        "bruno changed the phone from “0478000001” to “0478000002”"
    )
    await expect(entries.nth(1)).to_contain_text("on the web")
    await expect(entries.nth(2)).to_contain_text("You created the account")
    await expect(entries.nth(2)).to_have_attribute("data-op", "create")
    await check_screen(app, artifacts, "history", "history-list", "history-entry")

    # Offline, the phone shows the history it last read of the records it holds, and says
    # so; of a record it never read the history of, that it needs a connection.
    await app.set_offline(True)
    await app.go("#/today")
    await app.go(f"#/history/accounts/{account_id}")
    await expect(app.tid("history-kept")).to_contain_text("Newer changes need a connection")
    await expect(app.tid("history-entry")).to_have_count(3)
    await expect(app.tid("history-entry").nth(0)).to_contain_text("0478000003")
    await check_screen(app, artifacts, "history-kept", "history-kept", "history-entry")
    await app.go("#/today")
    await app.go(f"#/history/accounts/{other['id']}")
    await expect(app.tid("history-offline")).to_be_visible()
    await expect(app.tid("history-offline")).to_contain_text("needs a connection")
    await check_screen(app, artifacts, "history-offline", "history-offline")
    await app.set_offline(False)
