"""Privacy on the phone (SPEC section 12): a record erased on request while a phone was
offline with a change to it queued: once back, the phone drops the record and its change,
keeps nothing of either, and the screen it had open says the record was erased on request;
and a manager's export of an account, downloaded from its screen."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import App, Phones, Rest
from e2e.test_attachments import KEPT, camera_photo, pending, stored, until
from e2e.test_screens import check_screen

SHOP = (45.7640, 4.8357)


async def test_an_account_erased_while_the_phone_was_offline(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    server.add_user("root", role="admin", team="hq")
    alice = await Rest.login(server.url, "alice")
    root = await Rest.login(server.url, "root")
    try:
        account = await alice.create("accounts", name="Boulangerie Zacharie", phone="0478000001")
        contact = await alice.create(
            "contacts", account_id=account["id"], name="Zoé Martin", email="zoe@example.com"
        )
        kept = await alice.create("accounts", name="Fromagerie Kept")
    finally:
        await alice.close()
    account_id = account["id"]

    app: App = await phones.open(server.url)
    await app.open()
    await app.login("alice")
    await app.synced()
    await app.account.open(account_id)
    await expect(app.tid("contact-name")).to_have_text("Zoé Martin")

    # Offline, the rep goes on working on it; meanwhile an admin erases it.
    await app.set_offline(True)
    await app.save("accounts", account_id, phone="0478999999")
    await app.expect_pending(1)
    try:
        response = await root.client.post(
            "/api/privacy/erase", json={"table": "accounts", "id": account_id}
        )
        assert response.status_code == 200, response.text
    finally:
        await root.close()

    await app.set_offline(False)
    status = await app.synced()
    assert status["rejected"] == 0, status  # refused, and kept nowhere (not as rejected)
    await expect(app.tid("account-erased")).to_be_visible()
    await expect(app.tid("account-erased")).to_contain_text("erased on request")
    await check_screen(app, artifacts, "account-erased", "account-erased")
    assert account_id not in {row["id"] for row in await app.rows("accounts")}
    assert await app.rows("contacts") == []
    assert await app.outbox() == []
    assert not await app.meta("rejected")
    assert kept["id"] in {row["id"] for row in await app.rows("accounts")}
    # Nothing of it anywhere in the app: not in the list, not among refused writes.
    await app.go("#/accounts")
    await expect(app.tid("account-row").first).to_be_visible()
    await expect(app.page.locator("main")).not_to_contain_text("Zacharie")
    await app.go("#/rejected")
    await expect(app.page.locator("main")).not_to_contain_text("0478999999")
    # The contact's form, opened from an old link, says the same.
    await app.go(f"#/contact/{contact['id']}/edit")
    await expect(app.tid("form-erased")).to_contain_text("erased on request")


async def test_a_manager_downloads_an_accounts_export(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    server.add_user("marie", role="manager", team="north")
    alice = await Rest.login(server.url, "alice")
    try:
        account = await alice.create("accounts", name="Boulangerie Pain d'Or", phone="0478000001")
        await alice.create("contacts", account_id=account["id"], name="Zoé Martin")
        await alice.update("accounts", account["id"], phone="0478000002")
    finally:
        await alice.close()

    rep: App = await phones.open(server.url)
    await rep.open()
    await rep.login("alice")
    await rep.synced()
    await rep.account.open(account["id"])
    await expect(rep.tid("record-export")).to_have_count(0)  # a rep has no export

    app: App = await phones.open(server.url, accept_downloads=True)
    await app.open()
    await app.login("marie")
    await app.synced()
    await app.account.open(account["id"])
    async with app.page.expect_download() as waiting:
        await app.tid("record-export").click()
    download = await waiting.value
    assert download.suggested_filename.endswith(".json")
    document = json.loads(Path(await download.path()).read_text())
    assert document["record"]["name"] == "Boulangerie Pain d'Or"
    assert [c["name"] for c in document["hangs_off"]["contacts"]] == ["Zoé Martin"]
    changed = [e for e in document["history"] if e["op"] == "update"]
    assert changed[0]["fields"]["phone"] == {"old": "0478000001", "new": "0478000002"}
    await expect(app.tid("export-note")).to_have_text("Exported.")
    await check_screen(app, artifacts, "account-export", "record-export", "export-note")
    # Offline it says it needs a connection.
    await app.set_offline(True)
    await app.tid("record-export").click()
    await expect(app.tid("export-note")).to_contain_text("needs a connection")
    await app.set_offline(False)


async def test_an_erased_accounts_photos_leave_the_phone_too(
    server: Server, phones: Phones, tmp_path: Path
) -> None:
    """The phone keeps a photo's thumbnail once the server holds its bytes: an erasure of
    its account takes it from the phone at the next sync, with the rows, and the bytes
    from the server."""
    server.add_user("alice", team="north")
    server.add_user("root", role="admin", team="hq")
    alice = await Rest.login(server.url, "alice")
    try:
        shop = await alice.create("accounts", name="Boulangerie Photo", lat=SHOP[0], lng=SHOP[1])
    finally:
        await alice.close()

    app: App = await phones.open(
        server.url,
        permissions=["geolocation"],
        geolocation={"latitude": SHOP[0], "longitude": SHOP[1], "accuracy": 12},
    )
    await app.open()
    await app.login("alice")
    await app.synced()
    await app.account.open(shop["id"])
    await app.account.log_visit()
    await app.visit_form.check_in()
    await app.tid("attach-photo-input").set_input_files(str(camera_photo(tmp_path / "a.jpg", 1)))
    await expect(app.tid("attach-held-item")).to_have_count(1)
    await app.visit_form.fill(outcome="met", summary="Shelf photo")
    await app.visit_form.save()
    await app.synced()
    await until(lambda: pending(app), 0)  # uploaded: the thumbnail stays on the phone
    assert [k["thumb"] for k in await app.page.evaluate(KEPT)] == [True]
    assert len(stored(server)) == 1

    root = await Rest.login(server.url, "root")
    try:
        response = await root.client.post(
            "/api/privacy/erase", json={"table": "accounts", "id": shop["id"]}
        )
        assert response.status_code == 200, response.text
    finally:
        await root.close()
    await app.synced()
    assert await app.rows("accounts") == [] and await app.rows("attachments") == []
    assert await app.page.evaluate(KEPT) == []
    assert stored(server) == {}
