"""A rep logs a visit, a note and a follow-up task with no signal; back online, they reach
the server exactly once, and the server's check of the check-in comes back to the phone."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import Phones, Rest

# The account's door, and where the mocked GPS puts the phone: about 10 m away.
ACCOUNT_LAT, ACCOUNT_LNG = 48.85837, 2.29448
PHONE_AT = {"latitude": 48.85845, "longitude": 2.29452, "accuracy": 12}


def replay_of(outbox: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("mid", "table", "id", "op", "fields", "base_seq", "hlc")
    return [{k: entry[k] for k in keys} for entry in outbox]


async def test_visit_logged_offline_reaches_the_server_once(server: Server, phones: Phones) -> None:
    server.add_user("alice")
    app = await phones.open(server.url, permissions=["geolocation"], geolocation=PHONE_AT)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()

    # An account with a position, created in the app while online, and synced.
    await app.accounts.open()
    await app.accounts.new_account()
    await app.account_form.fill(
        name="Boulangerie Martin", city="Paris", lat=str(ACCOUNT_LAT), lng=str(ACCOUNT_LNG)
    )
    await app.account_form.save()
    account_id = await app.tid("account-screen").get_attribute("data-id")
    assert account_id
    await app.synced()

    # No signal: the app still opens, from the service worker's cache and IndexedDB.
    await app.set_offline(True)
    await app.reload()
    await app.account.expect_open(account_id)
    await app.expect_badge("offline")

    await app.account.log_visit()
    await app.visit_form.check_in()
    await app.visit_form.fill(
        outcome="follow_up", summary="Wants a tasting for the shop.", followup="Bring samples"
    )
    visit_id = await app.visit_form.save()
    await expect(app.visit.verification()).to_have_attribute("data-verification", "pending")
    await app.visit.add_note()
    await app.note_form.write("Owner prefers mornings.")
    await app.visit.open(visit_id)
    await app.expect_pending(3)
    sent = replay_of(await app.outbox())
    assert [m["table"] for m in sent] == ["visits", "tasks", "notes"]

    # Back online: everything goes up, and the server's verdict on the check-in comes down.
    await app.set_offline(False)
    await app.synced()
    await app.expect_pending(0)
    await expect(app.visit.verification()).to_have_attribute("data-verification", "verified")
    await expect(app.tid("visit-distance")).to_be_visible()

    rest = await Rest.login(server.url, "alice")
    try:

        async def on_server() -> tuple[list[Any], list[Any], list[Any]]:
            return (
                await rest.list("visits", account_id=account_id),
                await rest.list("notes", account_id=account_id),
                await rest.list("tasks", account_id=account_id),
            )

        visits, notes, tasks = await on_server()
        assert [v["id"] for v in visits] == [visit_id]
        visit = visits[0]
        assert visit["verification"] == "verified"
        assert visit["distance_m"] is not None and visit["distance_m"] < 50
        assert visit["user_id"] == rest.user["id"]
        assert visit["outcome"] == "follow_up"
        assert visit["accuracy_m"] == PHONE_AT["accuracy"]
        assert [(n["body"], n["visit_id"]) for n in notes] == [
            ("Owner prefers mornings.", visit_id)
        ]
        assert [(t["title"], t["assignee_id"], t["done"]) for t in tasks] == [
            ("Bring samples", rest.user["id"], False)
        ]

        # Syncing again sends nothing new; the same mutations sent again are replays.
        await app.synced()
        token, client_id = await app.meta("token"), await app.meta("client_id")
        as_phone = Rest(server.url, token, rest.user)
        try:
            response = await as_phone.sync(
                {"protocol": 1, "client_id": client_id, "cursor": None, "mutations": sent}
            )
        finally:
            await as_phone.close()
        assert response.status_code == 200, response.text
        results = response.json()["ack"]["results"]
        assert [(r["mid"], r["replayed"]) for r in results] == [(m["mid"], True) for m in sent]
        assert await on_server() == (visits, notes, tasks)
    finally:
        await rest.close()
