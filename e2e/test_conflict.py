"""Two reps of one team edit the same account's phone while offline. Per-field last writer
wins by HLC: the later edit is kept whichever phone syncs first, the other value lands in
the conflicts inbox, and "Keep mine" puts it back and resolves the conflict, after saying
whose value it replaces; the colleague whose value it replaced gets a conflict naming them
(issue 14), on their own phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import App, Phones, Rest
from e2e.test_screens import check_screen

ORIGINAL = "+33 1 40 00 00 00"
PHONES = {"A": "+33 6 11 11 11 11", "B": "+33 6 22 22 22 22"}


async def edit_phone(app: App, account_id: str, phone: str) -> None:
    await app.account.open(account_id)
    await app.account.edit()
    await app.account_form.fill(phone=phone)
    await app.account_form.save()
    await expect(app.account.phone()).to_have_text(phone)


@pytest.mark.parametrize(
    "later", ["B", "A"], ids=["later-edit-syncs-last", "later-edit-syncs-first"]
)
async def test_same_field_edited_offline_on_two_phones(
    server: Server, phones: Phones, artifacts: Path, later: str
) -> None:
    server.add_user("alice", team="north")
    server.add_user("bob", team="north")
    rest = await Rest.login(server.url, "alice")
    try:
        account = await rest.create("accounts", name="Café du Port", phone=ORIGINAL)
        account_id = account["id"]

        apps = {"A": await phones.open(server.url), "B": await phones.open(server.url)}
        for name, user in (("A", "alice"), ("B", "bob")):
            await apps[name].open()
            await apps[name].login(user)
            await apps[name].synced()
            await apps[name].account.open(account_id)
            await expect(apps[name].account.phone()).to_have_text(ORIGINAL)

        for app in apps.values():
            await app.set_offline(True)
            await app.expect_badge("offline")
        earlier = "A" if later == "B" else "B"
        await edit_phone(apps[earlier], account_id, PHONES[earlier])
        await edit_phone(apps[later], account_id, PHONES[later])
        for app in apps.values():
            await app.expect_pending(1)

        for name in ("A", "B"):
            await apps[name].set_offline(False)
            await apps[name].synced()
        for app in apps.values():  # the first one to sync has not heard of the second yet
            await app.synced()
            await expect(app.account.phone()).to_have_text(PHONES[later])
        assert (await rest.get("accounts", account_id))["account"]["phone"] == PHONES[later]

        # The loser sees its value in the inbox; the winner sees the same conflict.
        winner, loser = apps[later], apps[earlier]
        for app, mine in ((loser, "Keep mine"), (winner, "Restore lost value")):
            await app.conflicts.open()
            await expect(app.tid("nav-conflicts-count")).to_have_text("1")
            row = app.conflicts.rows()
            await expect(row).to_have_count(1)
            await expect(row.get_by_test_id("conflict-table")).to_have_text("accounts")
            # The card names the account it is about (SPEC 3 v1.1: conflicts.account_id).
            await expect(row.get_by_test_id("conflict-record")).to_contain_text("Café du Port")
            await expect(row.get_by_test_id("conflict-field")).to_have_text("phone")
            await expect(row.get_by_test_id("conflict-kept")).to_have_text(PHONES[later])
            await expect(row.get_by_test_id("conflict-lost")).to_have_text(PHONES[earlier])
            await expect(row.get_by_test_id("conflict-keep-mine")).to_have_text(mine)
        await expect(loser.conflicts.rows().get_by_test_id("conflict-lost-by")).to_contain_text(
            "by you"
        )

        # "Keep mine" says whose value it replaces, with what, and asks a second tap.
        users = {"A": "alice", "B": "bob"}
        first_id = await loser.conflicts.rows().get_attribute("data-id")
        keep = loser.conflicts.rows().get_by_test_id("conflict-keep-mine")
        await keep.click()
        confirm = loser.conflicts.rows().get_by_test_id("conflict-keep-mine-confirm")
        await expect(confirm).to_have_text(
            f"This replaces {users[later]}'s value “{PHONES[later]}” with “{PHONES[earlier]}”."
            f" {users[later]} will see a conflict about it."
        )
        await expect(keep).to_have_text("Tap again to write it back")
        await check_screen(loser, artifacts, "conflict-keep-mine", "conflict-keep-mine-confirm")
        await keep.click()
        await expect(loser.tid("toast")).to_contain_text(f"over {users[later]}'s value")
        # (The conflict the server makes for the winner may already be back: it was sent.)
        resolved = loser.page.locator(f'[data-testid=conflict-row][data-id="{first_id}"]')
        await expect(resolved).to_have_count(0)
        await loser.synced()
        assert (await rest.get("accounts", account_id))["account"]["phone"] == PHONES[earlier]
        conflicts = await rest.list("conflicts")
        # The first conflict is resolved; a new one keeps the winner's overwritten value.
        assert sorted(
            (c["field"], c["kept_value"], c["lost_value"], c["resolved"]) for c in conflicts
        ) == sorted(
            [
                ("phone", PHONES[later], PHONES[earlier], True),
                ("phone", PHONES[earlier], PHONES[later], False),
            ]
        )

        # The winner's phone follows: the restored value, and a conflict that tells them
        # their value was replaced, and by whom.
        await winner.synced()
        await expect(winner.tid("nav-conflicts-count")).to_have_text("1")
        await winner.conflicts.open()
        told = winner.conflicts.rows()
        await expect(told).to_have_count(1)
        await expect(told.get_by_test_id("conflict-lost")).to_have_text(PHONES[later])
        await expect(told.get_by_test_id("conflict-lost-by")).to_contain_text("by you")
        await expect(told.get_by_test_id("conflict-kept")).to_have_text(PHONES[earlier])
        await expect(told.get_by_test_id("conflict-kept-by")).to_contain_text(
            f"by {users[earlier]}"
        )
        await expect(told.get_by_test_id("conflict-keep-mine")).to_have_text("Keep mine")
        await winner.account.open(account_id)
        await expect(winner.account.phone()).to_have_text(PHONES[earlier])

        # The one who kept theirs sees it too, as the value they replaced.
        await loser.synced()
        await expect(loser.tid("nav-conflicts-count")).to_have_text("1")
        await expect(loser.conflicts.rows().get_by_test_id("conflict-lost-by")).to_contain_text(
            f"by {users[later]}"
        )
    finally:
        await rest.close()


async def test_an_edit_that_lost_every_field_shows_the_winner(
    server: Server, phones: Phones
) -> None:
    """Bob edits while a sync is on its way; Alice's later edit reaches the server first,
    and that sync brings it back under Bob's pending value. Bob's edit then loses every
    field (merged): no newer row comes for it, and the phone must still show Alice's."""
    server.add_user("alice", team="north")
    server.add_user("bob", team="north")
    rest = await Rest.login(server.url, "alice")
    try:
        account = await rest.create("accounts", name="Café du Port", phone=ORIGINAL)
        account_id = account["id"]
        app = await phones.signed_in(server.url, "bob", controlled=False)
        await app.account.open(account_id)

        async with app.sync_in_flight():  # a sync with nothing to send
            await app.save("accounts", account_id, phone=PHONES["B"])
            await app.expect_pending(1)
            await rest.update("accounts", account_id, phone=PHONES["A"])
        await app.synced()  # sends Bob's edit

        [result] = await app.meta("last_results")
        assert result["status"] == "merged"
        await expect(app.account.phone()).to_have_text(PHONES["A"])
        [row] = [r for r in await app.rows("accounts") if r["id"] == account_id]
        assert row["phone"] == PHONES["A"]
        assert (await rest.get("accounts", account_id))["account"]["phone"] == PHONES["A"]
        await expect(app.tid("nav-conflicts-count")).to_have_text("1")
    finally:
        await rest.close()
