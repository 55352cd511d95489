"""Two reps of one team edit the same account's phone while offline. Per-field last writer
wins by HLC: the later edit is kept whichever phone syncs first, the other value lands in
the conflicts inbox, and "Keep mine" puts it back and resolves the conflict."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import App, Phones, Rest

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
    server: Server, phones: Phones, later: str
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

        await loser.conflicts.rows().get_by_test_id("conflict-keep-mine").click()
        await expect(loser.tid("conflicts-empty")).to_be_visible()
        await loser.synced()
        assert (await rest.get("accounts", account_id))["account"]["phone"] == PHONES[earlier]
        conflicts = await rest.list("conflicts")
        assert [(c["record_id"], c["field"], c["resolved"]) for c in conflicts] == [
            (account_id, "phone", True)
        ]

        # The winner's phone follows: the restored value, and an empty inbox.
        await winner.synced()
        await expect(winner.tid("conflicts-empty")).to_be_visible()
        await expect(winner.tid("nav-conflicts-count")).to_be_hidden()
        await winner.account.open(account_id)
        await expect(winner.account.phone()).to_have_text(PHONES[earlier])
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
        app = await phones.open(server.url)
        await app.open()
        await app.login("bob")
        await app.synced()
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
