"""Installing the app (issue 18): where the browser offers to install (`beforeinstallprompt`),
the app keeps the offer and Me shows "Install fieldcrm", which shows the browser's own prompt;
on an iPhone, where Safari offers none, Me says how to add it to the home screen.

Headless Chromium decides for itself whether and when to offer, so the test hands the app
the event the browser would send, with a `prompt()` that counts its calls."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, Phones

OFFER = """() => {
  const offer = new Event("beforeinstallprompt", { cancelable: true });
  window.promptsShown = 0;
  offer.prompt = () => { window.promptsShown += 1; return Promise.resolve(); };
  offer.userChoice = Promise.resolve({ outcome: "accepted", platform: "web" });
  window.dispatchEvent(offer);
  return offer.defaultPrevented;
}"""


async def test_the_browsers_install_prompt_from_me(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice")
    app = await phones.open(server.url)
    await app.open()
    await app.login("alice")
    await app.tid("nav-settings").click()
    await app.expect_screen("settings")
    # The app keeps the browser's offer (no mini-infobar) for the rep to take up in Me.
    assert await app.page.evaluate(OFFER) is True
    button = app.tid("install-button")
    await expect(button).to_be_visible()
    assert await app.scroll_width() <= PHONE["width"]
    await app.page.screenshot(path=artifacts / "install-me.png")
    await button.click()
    await expect(app.tid("me-install")).to_have_count(0)
    assert await app.page.evaluate("() => window.promptsShown") == 1
    # Offered again later (the rep said no, say): the button comes back.
    await app.page.evaluate(OFFER)
    await expect(button).to_be_visible()
    await app.page.evaluate("() => window.dispatchEvent(new Event('appinstalled'))")
    await expect(app.tid("me-install")).to_have_count(0)


async def test_an_iphone_is_told_how_to_add_the_app(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice")
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    )
    app = await phones.signed_in(server.url, "alice", user_agent=iphone, controlled=False)
    await app.go("#/settings")
    await app.expect_screen("settings")
    await expect(app.tid("install-ios")).to_contain_text("Add to Home Screen")
    # The whole page, scrolled in one step of the page's own: Me is drawn again when a
    # sync lands, and an element Playwright holds fails if it is replaced meanwhile.
    await app.page.evaluate(
        "() => document.querySelector('[data-testid=me-install]').scrollIntoView()"
    )
    await app.page.screenshot(path=artifacts / "install-ios.png")
