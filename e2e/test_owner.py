"""A rep's account form offers only what a rep may do with the owner (SPEC section 2,
v1.1): an account with an owner shows them, locked, with a hint; a new account is theirs."""

from __future__ import annotations

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import Phones, Rest


async def test_a_rep_cannot_hand_an_owned_account_to_someone_else(
    server: Server, phones: Phones, artifacts
) -> None:
    server.add_user("alice", team="north")
    server.add_user("bob", team="north")
    rest = await Rest.login(server.url, "alice")
    try:
        account = await rest.create("accounts", name="Quincaillerie Roux")
    finally:
        await rest.close()
    app = await phones.signed_in(server.url, "bob", controlled=False)
    await app.account.open(account["id"])
    await app.account.edit()
    owner = app.page.locator("select[name=owner_id]")
    await expect(owner).to_be_disabled()
    await expect(owner.locator("option")).to_have_count(1)
    await expect(app.tid("owner-hint")).to_contain_text("A manager reassigns")
    await app.page.screenshot(path=str(artifacts / "screen-owner-locked.png"), full_page=True)
