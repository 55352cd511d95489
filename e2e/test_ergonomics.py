"""The app in a rep's hand at 360x740 (issue 18): the header says the truth (never a green
"Ready" while signed out or offline; "Sync now" answers offline; the sync state in one
place); with text at 200% nothing in the header or the tab bar overlaps or is cut short, on
every main screen; every control on the main screens is a 44 px target; the account's
address opens the phone's maps app. Screenshots at 100% and 200% text, online and offline,
go to test-artifacts/."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones
from e2e.test_screens import LAT, LNG, seed

# What overlaps or overflows in the header and the tab bar, as sentences; [] when the
# layout holds. Boxes are compared to half a pixel (sub-pixel layout).
LAYOUT_PROBLEMS = r"""
() => {
  const problems = [];
  const shown = (el) => el.checkVisibility() && el.getBoundingClientRect().width > 0;
  const name = (el) => el.dataset.testid || el.className || el.tagName;
  const width = document.documentElement.clientWidth;
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5
    && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
  const cut = (el) => el.scrollWidth > el.clientWidth + 1;
  const apart = (parent, children) => {
    const box = parent.getBoundingClientRect();
    if (box.left < -0.5 || box.right > width + 0.5) {
      problems.push(`${name(parent)} is wider than the screen`);
    }
    children.forEach((a, i) => {
      const ra = a.getBoundingClientRect();
      if (!inside(ra, box)) problems.push(`${name(a)} sticks out of ${name(parent)}`);
      children.slice(i + 1).forEach((b) => {
        if (overlap(ra, b.getBoundingClientRect())) problems.push(`${name(a)} overlaps ${name(b)}`);
      });
    });
  };
  const bar = document.querySelector(".topbar");
  apart(bar, [...bar.children].filter(shown));
  const state = document.querySelector("[data-testid=sync-state]");
  for (const line of document.querySelectorAll(".sync-text")) {
    if (shown(line) && cut(line)) {
      problems.push(`the sync line "${line.textContent.trim()}" is cut short`);
    }
  }
  const stateBox = state.getBoundingClientRect();
  if (stateBox.width < state.textContent.length * 4) {
    problems.push(`the sync state is ${stateBox.width} px wide`);
  }
  const nav = document.querySelector("nav.tabs");
  if (shown(nav)) {
    const tabs = [...nav.querySelectorAll("a")].filter(shown);
    apart(nav, tabs);
    for (const tab of tabs) {
      const label = tab.querySelector(".tab-label");
      if (!label || !shown(label)) problems.push(`${name(tab)} shows no label`);
      else if (!inside(label.getBoundingClientRect(), tab.getBoundingClientRect()) || cut(tab)) {
        problems.push(`${name(tab)}'s label does not fit`);
      }
      const icon = tab.querySelector(".icon");
      if (!icon || !shown(icon)) problems.push(`${name(tab)} shows no icon`);
    }
    // The page keeps clear of the bar: the end of the content can be scrolled above it.
    const room = parseFloat(getComputedStyle(document.body).paddingBottom);
    if (room + 0.5 < nav.getBoundingClientRect().height) {
      problems.push("the tab bar hides the end of the page");
    }
  }
  if (document.documentElement.scrollWidth > width) problems.push("the page scrolls sideways");
  return problems;
}
"""

# Every control on screen smaller than 44x44 CSS px: `testid (w x h)`. A checkbox counts
# with its label(s) (tapping either ticks it). Links inside a sentence are exempt (WCAG
# 2.5.8's inline exception): their size is the line's.
SMALL_TARGETS = r"""
() => {
  const small = [];
  const controls = document.querySelectorAll(
    "a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])");
  const union = (rects) => rects.reduce((u, r) => ({
    left: Math.min(u.left, r.left), right: Math.max(u.right, r.right),
    top: Math.min(u.top, r.top), bottom: Math.max(u.bottom, r.bottom),
  }));
  const inSentence = (el) => el.tagName === "A" && [...el.parentElement.childNodes]
    .some((n) => n !== el && n.nodeType === 3 && n.textContent.trim());
  for (const el of controls) {
    if (el.type === "hidden" || !el.checkVisibility({ visibilityProperty: true })) continue;
    if (el.closest("[inert], [aria-hidden=true]") || inSentence(el)) continue;
    const rects = [el.getBoundingClientRect()];
    if (el.labels && (el.type === "checkbox" || el.type === "radio")) {
      for (const label of el.labels) rects.push(label.getBoundingClientRect());
    }
    const box = union(rects);
    const w = box.right - box.left;
    const h = box.bottom - box.top;
    if (w === 0 && h === 0) continue;
    if (w < 43.5 || h < 43.5) {
      const text = el.textContent.trim().slice(0, 20);
      const name = el.dataset.testid || `${el.tagName.toLowerCase()} "${text}"`;
      small.push(`${name} (${Math.round(w)} x ${Math.round(h)})`);
    }
  }
  return small;
}
"""


FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


async def text_size(app: App, percent: int) -> None:
    """The phone's text size (the app sizes everything in rem)."""
    await app.page.evaluate(
        "(p) => { document.documentElement.style.fontSize = `${p}%`; }", percent
    )
    # Two frames: the layout, then what the app does about it (the bar's height).
    await app.page.evaluate(FRAMES)


async def layout_problems(app: App) -> list[str]:
    problems: list[str] = await app.page.evaluate(LAYOUT_PROBLEMS)
    return problems


async def small_targets(app: App) -> list[str]:
    small: list[str] = await app.page.evaluate(SMALL_TARGETS)
    return small


async def test_the_header_tells_the_truth(server: Server, phones: Phones, artifacts: Path) -> None:
    server.add_user("alice")
    app = await phones.open(server.url)
    await app.open()
    await app.wait_controlled()
    # Signed out, online then offline: never "Ready", never green.
    badge, state = app.tid("sync-badge"), app.tid("sync-state")
    await app.expect_badge("signed-out")
    await expect(state).to_have_text("Not signed in")
    await app.set_offline(True)
    await app.page.reload()
    await app.wait_ready()
    await app.expect_badge("signed-out")
    await expect(state).to_have_text("Not signed in")
    dot = await badge.locator(".sync-dot").evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert dot != "rgb(159, 211, 169)", "a green dot while signed out"
    await expect(app.tid("sync-now")).to_be_hidden()
    await app.page.screenshot(path=artifacts / "header-signed-out-offline.png")
    await app.set_offline(False)

    await app.login("alice")
    await app.synced()
    await app.expect_badge("synced")
    await expect(state).to_have_text("Synced")
    # One place for the sync state: the header, not a second line on Today.
    await expect(app.tid("today-sync")).to_have_count(0)

    # Offline, "Sync now" answers in words (the badge alone would not change).
    await app.set_offline(True)
    await app.expect_badge("offline")
    await expect(state).to_have_text("Offline")
    await app.tid("today-new-task").click()
    await app.task_form.fill(title="Ring the bakery")
    await app.tid("form-save").click()
    await app.expect_pending(1)
    await app.tid("sync-now").click()
    await expect(app.tid("toast")).to_contain_text("You are offline")
    await expect(app.tid("toast")).to_contain_text("1 change waits on this phone")
    await app.page.screenshot(path=artifacts / "header-sync-now-offline.png")

    await app.set_offline(False)
    await app.tid("sync-now").click()
    await expect(app.tid("toast")).to_have_text("Synced: this phone is up to date.")
    await app.expect_pending(0)


async def test_text_at_200_percent_keeps_header_and_tabs_apart(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    server.add_user("maria", role="manager", team="north")
    app = await phones.open(server.url)
    await app.open()
    await text_size(app, 200)
    assert await layout_problems(app) == []
    await app.page.screenshot(path=artifacts / "text200-login.png")
    await text_size(app, 100)
    await app.login("alice")
    await app.synced()

    screens: list[tuple[str, str, str]] = [
        ("today", "#/today", "today-tasks"),
        ("accounts", "#/accounts", "account-row"),
        ("account", f"#/account/{ids['account']}", "account-details"),
        ("visit-new", f"#/visit/new?account={ids['account']}", "visit-checkin"),
        ("tasks", "#/tasks", "task-row"),
        ("conflicts", "#/conflicts", "conflict-row"),
        ("me", "#/settings", "me-username"),
    ]
    for offline in (False, True):
        await app.set_offline(offline)
        await app.expect_badge("offline" if offline else "synced")
        for percent in (100, 150, 200):
            await text_size(app, percent)
            for name, route, testid in screens:
                await app.go(route)
                await expect(app.tid(testid).first).to_be_visible()
                problems = await layout_problems(app)
                assert problems == [], f"{name} at {percent}% text, offline={offline}: {problems}"
                if percent != 150:
                    suffix = "-offline" if offline else ""
                    shot = artifacts / f"text{percent}-{name}{suffix}"
                    await app.page.screenshot(path=f"{shot}.png")
                    await app.page.screenshot(path=f"{shot}-full.png", full_page=True)

    # A manager's seventh tab (Team) fits too.
    await app.set_offline(False)
    manager = await phones.signed_in(server.url, "maria", controlled=False)
    await expect(manager.tid("nav-team")).to_be_visible()
    for percent in (100, 200):
        await text_size(manager, percent)
        problems = await layout_problems(manager)
        assert problems == [], f"manager at {percent}%: {problems}"
        await manager.page.screenshot(path=artifacts / f"text{percent}-manager-today.png")


async def test_every_control_on_the_main_screens_is_a_44_px_target(
    server: Server, phones: Phones
) -> None:
    ids = await seed(server)
    here = {"latitude": LAT, "longitude": LNG, "accuracy": 12}
    app = await phones.open(server.url, permissions=["geolocation"], geolocation=here)
    await app.open()
    await expect(app.tid("login-submit")).to_be_visible()
    assert await small_targets(app) == [], "login"
    await app.login("alice")
    await app.synced()
    screens = [
        ("today", "#/today", "task-row"),
        ("accounts", "#/accounts", "account-row"),
        ("account", f"#/account/{ids['account']}", "deal-row"),
        ("visit", f"#/visit/{ids['visit']}", "visit-summary-text"),
        ("visit-new", f"#/visit/new?account={ids['account']}", "visit-checkin"),
        ("task-form", f"#/task/{ids['task']}/edit", "account-picker"),
        ("tasks", "#/tasks", "task-row"),
        ("nearby", "#/nearby", "nearby-row"),
        ("conflicts", "#/conflicts", "conflict-row"),
        ("me", "#/settings", "logout-button"),
    ]
    found: dict[str, Any] = {}
    for percent in (100, 200):
        await text_size(app, percent)
        for name, route, testid in screens:
            await app.go(route)
            await expect(app.tid(testid).first).to_be_visible()
            if name == "nearby":  # the map's own buttons too
                await expect(app.page.locator(".leaflet-control-zoom-in")).to_be_visible()
            small = await small_targets(app)
            if small:
                found[f"{name} at {percent}%"] = small
    assert found == {}


async def test_the_address_opens_the_phones_maps_app(server: Server, phones: Phones) -> None:
    ids = await seed(server)
    android = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/126 Mobile"
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile"
    query = "102%20Cours%20Lafayette%2C%2069003%20Lyon%2C%20France"
    for agent, href in (
        (android, f"geo:0,0?q={query}"),
        (iphone, f"https://maps.apple.com/?q={query}"),
    ):
        app = await phones.signed_in(server.url, "alice", user_agent=agent, controlled=False)
        await app.account.open(ids["account"])
        link = app.tid("account-address").get_by_role("link")
        await expect(link).to_have_attribute("href", href)
        box = None
        for _ in range(50):  # a sync may be drawing the screen again: its new link, then
            box = await link.bounding_box()
            if box:
                break
            await asyncio.sleep(0.1)
        assert box and box["height"] >= 44
        assert await app.scroll_width() <= PHONE["width"]
