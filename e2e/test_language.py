"""French and English (issue 18, docs/i18n.md): a phone set to French gets the app in
French from the first start, the rep can change the language in Me offline, and every
main screen holds at 360 px and at 200% text in both languages (French is longer), with no
serious axe-core violation.
Screenshots of each main screen in both languages go to test-artifacts/i18n-*.png."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import expect

from e2e.a11y import check_axe
from e2e.conftest import Server
from e2e.pages import App, Phones
from e2e.test_ergonomics import FRAMES, layout_problems, text_size
from e2e.test_screens import LAT, LNG, seed

# What in <main> sticks out past the screen's right edge or is cut short in a box that
# hides its overflow: `testid or tag "text"`; [] when French fits.
OVERFLOWS = r"""
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("main *")) {
    // A map's insides are placed on purpose: Leaflet's, and the account map's pin and
    // clamped label before Leaflet takes its box (a slow load left them to be measured).
    if (!el.checkVisibility() || el.closest(".leaflet-container, .account-map-box, dialog")) {
      continue;
    }
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    const clips = ["hidden", "clip"].includes(getComputedStyle(el).overflowX)
      && !el.classList.contains("visually-hidden");
    if (box.right > width + 0.5 || (clips && el.scrollWidth > el.clientWidth + 1)) {
      const text = el.textContent.trim().slice(0, 30);
      out.push(`${el.dataset.testid || el.tagName.toLowerCase()} "${text}"`);
    }
  }
  return out;
}
"""


# What in <main> overlaps its neighbour: boxes laid out side by side or one under the
# other (not inline text, which wraps, nor what is placed on purpose: absolute, a map's
# insides) that share more than half a pixel; [] when nothing is drawn over something else.
OVERLAPS = r"""
() => {
  const out = [];
  const laid = (el) => el.checkVisibility() && !el.closest(".leaflet-container")
    && !["inline", "contents"].includes(getComputedStyle(el).display)
    && !["absolute", "fixed"].includes(getComputedStyle(el).position)
    && el.getBoundingClientRect().width > 0 && el.getBoundingClientRect().height > 0;
  const name = (el) => el.dataset.testid
    || `${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 20)}"`;
  for (const parent of document.querySelectorAll("main, main *")) {
    const kids = [...parent.children].filter(laid);
    kids.forEach((a, i) => {
      const ra = a.getBoundingClientRect();
      for (const b of kids.slice(i + 1)) {
        const rb = b.getBoundingClientRect();
        if (ra.left < rb.right - 0.5 && rb.left < ra.right - 0.5
            && ra.top < rb.bottom - 0.5 && rb.top < ra.bottom - 0.5) {
          out.push(`${name(a)} overlaps ${name(b)}`);
        }
      }
    });
  }
  return out;
}
"""

FRENCH_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                 "nov.", "déc.")  # fmt: skip


def main_screens(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    return [
        ("today", "#/today", "today-tasks"),
        ("accounts", "#/accounts", "account-row"),
        ("account", f"#/account/{ids['account']}", "account-details"),
        ("visit-new", f"#/visit/new?account={ids['account']}", "visit-checkin"),
        ("visit", f"#/visit/{ids['visit']}", "visit-summary-text"),
        ("tasks", "#/tasks", "task-row"),
        ("task-new", "#/task/new", "form-save"),
        ("nearby", "#/nearby", "nearby-row"),
        ("conflicts", "#/conflicts", "conflict-row"),
        ("me", "#/settings", "me-language"),
    ]


HERE = {"latitude": LAT, "longitude": LNG, "accuracy": 12}


async def check_screens(app: App, ids: dict[str, str], lang: str, artifacts: Path) -> None:
    for percent in (100, 200):
        await text_size(app, percent)
        for name, route, testid in main_screens(ids):
            await app.go(route)
            await expect(app.tid(testid).first).to_be_visible()
            await app.page.evaluate(FRAMES)
            problems = await layout_problems(app) + await app.page.evaluate(OVERFLOWS)
            problems += await app.page.evaluate(OVERLAPS)
            assert problems == [], f"{name} in {lang} at {percent}% text: {problems}"
            shot = artifacts / f"i18n-{lang}-{name}{'-text200' if percent == 200 else ''}"
            await app.page.screenshot(path=f"{shot}.png", full_page=True)
            if percent == 100:  # labels, names and lang in the language too (axe-core)
                await check_axe(app.page, f"i18n-{lang}-{name}", artifacts)
    await text_size(app, 100)


async def test_a_french_phone_gets_the_app_in_french(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    app = await phones.open(
        server.url, locale="fr-FR", permissions=["geolocation"], geolocation=HERE
    )
    await app.open()
    await expect(app.page.locator("html")).to_have_attribute("lang", "fr")
    await expect(app.page.locator("h1")).to_have_text("Connexion à fieldcrm")
    await expect(app.tid("login-submit")).to_have_text("Se connecter")
    await app.tid("login-username").fill("alice")
    await app.tid("login-password").fill("not-the-password")
    await app.tid("login-submit").click()
    await expect(app.tid("login-error")).to_have_text(
        "Nom d’utilisateur ou mot de passe incorrect."
    )
    # The browser's own line for the refused sign-in, not the app's.
    app.watch.errors[:] = [e for e in app.watch.errors if "status of 401" not in e]
    await app.page.screenshot(path=artifacts / "i18n-fr-login.png")
    await app.login("alice")
    await app.synced()

    # The tabs say it short (French is longer: "Aujourd’hui" would not fit in a tab).
    await expect(app.tid("nav-today")).to_contain_text("Journée")
    await expect(app.tid("nav-nearby")).to_contain_text("Autour")
    await expect(app.tid("sync-state")).to_have_text("Synchronisé")
    await expect(app.tid("sync-now")).to_have_text("Synchroniser")
    await expect(app.page.locator("nav.tabs")).to_have_attribute(
        "aria-label", "Navigation principale"
    )
    await expect(app.page.locator("main h1")).to_have_text("Aujourd’hui")
    await app.go("#/accounts")
    await expect(app.tid("account-count")).to_have_text("1 compte")
    await app.go(f"#/account/{ids['account']}")
    await expect(app.tid("account-log-visit")).to_have_text("Saisir une visite")
    await expect(app.tid("account-plan-visit")).to_have_text("Planifier une visite")
    await expect(app.tid("account-status")).to_have_text("Client")
    await app.go("#/tasks")
    await expect(app.tid("task-snooze").first).to_have_text("Reporter d’1 h")
    await app.go(f"#/visit/new?account={ids['account']}")
    await expect(app.tid("visit-checkin")).to_have_text("Pointer")
    await app.go("#/settings")
    await expect(app.page.locator("main h1")).to_have_text("Moi")
    await expect(app.tid("me-language")).to_have_value("auto")
    # Dates come from Intl in French: a month's name in French on the visit rows.
    await app.go("#/today")
    when = await app.tid("visit-row").first.text_content() or ""
    assert any(month in when for month in FRENCH_MONTHS), when

    await check_screens(app, ids, "fr", artifacts)

    await app.set_offline(True)
    await app.expect_badge("offline")
    await expect(app.tid("sync-state")).to_have_text("Hors ligne")
    await app.tid("sync-now").click()
    await expect(app.tid("toast")).to_contain_text("Vous êtes hors ligne")
    await app.page.screenshot(path=artifacts / "i18n-fr-offline.png")


async def test_a_managers_screens_hold_in_french(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    await seed(server)
    server.add_user("maria", role="manager", team="north")
    app = await phones.signed_in(
        server.url,
        "maria",
        locale="fr-FR",
        permissions=["geolocation"],
        geolocation=HERE,
        controlled=False,
    )
    await expect(app.tid("nav-team")).to_contain_text("Équipe")
    screens = [
        ("team", "#/team", "team-source"),
        ("duplicates", "#/duplicates", "duplicates-body"),
        ("rejected", "#/rejected", "rejected-count"),
        ("campaign-new", "#/campaign/new", "campaign-map"),
        ("nearby", "#/nearby", "nearby-row"),
    ]
    for percent in (100, 200):
        await text_size(app, percent)
        for name, route, testid in screens:
            await app.go(route)
            await expect(app.tid(testid).first).to_be_attached()
            await app.page.evaluate(FRAMES)
            problems = await layout_problems(app) + await app.page.evaluate(OVERFLOWS)
            assert problems == [], f"{name} in French at {percent}% text: {problems}"
            suffix = "-text200" if percent == 200 else ""
            await app.page.screenshot(
                path=artifacts / f"i18n-fr-{name}{suffix}.png", full_page=True
            )
    await app.go("#/team")
    await expect(app.page.locator("main h1")).to_have_text("Équipe")


async def test_the_language_changes_in_me_offline_and_stays(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    app = await phones.open(
        server.url, locale="en-GB", permissions=["geolocation"], geolocation=HERE
    )
    await app.open()
    await expect(app.tid("login-submit")).to_be_visible()
    await app.page.screenshot(path=artifacts / "i18n-en-login.png")
    await app.login("alice")
    await app.synced()
    await app.wait_controlled()
    await expect(app.tid("nav-today")).to_contain_text("Today")
    await check_screens(app, ids, "en", artifacts)

    await app.set_offline(True)
    await app.expect_badge("offline")
    await app.go("#/settings")
    async with app.page.expect_navigation():
        await app.tid("me-language").select_option("fr")
    await app.wait_ready()
    await expect(app.page.locator("html")).to_have_attribute("lang", "fr")
    await expect(app.page.locator("main h1")).to_have_text("Moi")
    await expect(app.tid("nav-accounts")).to_contain_text("Comptes")
    await expect(app.tid("me-language")).to_have_value("fr")
    await expect(app.tid("sync-state")).to_have_text("Hors ligne")

    # Kept on the phone: the app opens again in French, offline.
    await app.reload()
    await app.go("#/accounts")
    await expect(app.tid("account-count")).to_have_text("1 compte")

    await app.go("#/settings")
    async with app.page.expect_navigation():
        await app.tid("me-language").select_option("auto")
    await app.wait_ready()
    await expect(app.page.locator("html")).to_have_attribute("lang", "en")
    await expect(app.page.locator("main h1")).to_have_text("Me")


async def installed_manifest(app: App) -> tuple[str, dict[str, str]]:
    """The manifest Chromium would install the app with: its URL and its members."""
    cdp = await app.page.context.new_cdp_session(app.page)
    try:
        found = await cdp.send("Page.getAppManifest")
        assert found["errors"] == [], found["errors"]
        return found["url"], json.loads(found["data"])
    finally:
        await cdp.detach()


async def test_the_installed_app_is_described_in_the_language(
    server: Server, phones: Phones
) -> None:
    """docs/i18n.md, "The manifest": the page links the manifest of its language, which
    Chromium reads when it installs the app, and again when the language changes."""
    server.add_user("alice")
    app = await phones.open(server.url, locale="fr-FR")
    await app.open()
    url, manifest = await installed_manifest(app)
    assert url == f"{server.url}/manifest.fr.webmanifest"
    assert manifest["lang"] == "fr"
    assert manifest["description"].startswith("Le CRM hors ligne des commerciaux terrain")
    assert (manifest["name"], manifest["short_name"]) == ("fieldcrm", "fieldcrm")
    assert manifest["id"] == "/"  # the same installed app in every language

    # The language chosen in Me wins over the phone's.
    await app.login("alice")
    await app.go("#/settings")
    async with app.page.expect_navigation():
        await app.tid("me-language").select_option("en")
    await app.wait_ready()
    url, manifest = await installed_manifest(app)
    assert url == f"{server.url}/manifest.webmanifest"
    assert manifest["lang"] == "en"
    assert manifest["description"].startswith("The offline-first CRM for field sales")
