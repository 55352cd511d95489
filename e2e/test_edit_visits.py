"""Visits and notes are edited and deleted by their author (SPEC section 2), offline, and
the changes reach the server; a teammate gets no Edit on someone else's visit or note. A
visit shows how long it lasted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import Phones, Rest


async def test_an_author_edits_and_deletes_their_visit_and_note(
    server: Server, phones: Phones
) -> None:
    server.add_user("alice", team="north")
    server.add_user("bruno", team="north")
    alice = await Rest.login(server.url, "alice")
    bruno = await Rest.login(server.url, "bruno")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    try:
        shop = await alice.create("accounts", name="Cave des Canuts")
        visit = await alice.create(
            "visits", account_id=shop["id"], started_at=start.isoformat(),
            ended_at=(start + timedelta(minutes=23)).isoformat(), summary="Met the owner",
        )  # fmt: skip
        note = await alice.create("notes", account_id=shop["id"], body="Likes the red")
        theirs = await bruno.create("notes", account_id=shop["id"], body="Bruno's note")
    finally:
        await bruno.close()

    app = await phones.signed_in(server.url, "alice")
    await app.set_offline(True)

    await app.go(f"#/visit/{visit['id']}")
    await expect(app.tid("visit-duration")).to_have_text("23 min")
    await app.tid("visit-edit").click()
    form = app.tid("visit-edit-form")
    await expect(form.get_by_test_id("field-summary")).to_have_value("Met the owner")
    await form.get_by_test_id("field-summary").fill("Met the owner; tasting on Friday")
    await form.get_by_test_id("field-outcome").select_option("follow_up")
    await form.get_by_test_id("form-save").click()
    await expect(app.tid("visit-summary-text")).to_have_text("Met the owner; tasting on Friday")

    await app.account.open(shop["id"])
    mine = app.page.locator(f'[data-testid=note-row][data-id="{note["id"]}"]')
    other = app.page.locator(f'[data-testid=note-row][data-id="{theirs["id"]}"]')
    await expect(other.get_by_test_id("note-edit")).to_have_count(0)
    await mine.get_by_test_id("note-edit").click()
    await expect(app.tid("note-edit-form").get_by_test_id("field-body")).to_have_value(
        "Likes the red"
    )
    await app.tid("form-delete").click()
    await expect(app.tid("form-delete")).to_have_text("Tap again to delete this note")
    await app.tid("form-delete").click()
    await app.account.expect_open(shop["id"])
    await expect(mine).to_have_count(0)

    await app.set_offline(False)
    await app.synced()
    try:
        stored = await alice.get("visits", visit["id"])
        assert (stored["summary"], stored["outcome"]) == (
            "Met the owner; tasting on Friday",
            "follow_up",
        )
        assert [n["id"] for n in await alice.list("notes")] == [theirs["id"]]
    finally:
        await alice.close()
