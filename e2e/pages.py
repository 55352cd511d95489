"""Page objects for the PWA's journeys. Every selector is a data-testid from docs/pwa.md and
every wait is on a state the app sets on purpose (body[data-screen], data-state,
data-count), never on a sleep. Waits use locators, not `wait_for_function` with a string:
the app's CSP forbids eval, and Playwright evaluates such strings inside the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    Response,
    Route,
    expect,
)

PASSWORD = "secret-pw-1"
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 10_000
SYNC_URL = "**/api/sync/v1"

# A loaded CI machine (two cores, a server and Chromium per test) is slower than a phone.
expect.set_options(timeout=TIMEOUT_MS)

# Chromium reports CSP violations in the console too; this makes sure each one is an error
# with a recognisable text, whatever directive it broke.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""

# Text that fails WCAG 2 AA contrast (4.5:1, or 3:1 for large text) against the background
# it sits on (the backgrounds of its ancestors blended, opacity included); disabled and
# invisible elements are exempt, as in WCAG.
LOW_CONTRAST = r"""
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const lum = (c) => {
    const f = (v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg.a > 0) { layers.push(bg); if (bg.a === 1) break; }
    }
    let color = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) color = over(layer, color);
    return color;
  };
  const failures = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width < 2 || rect.height < 2 || el.closest("[disabled]")) continue;
    const style = getComputedStyle(el);
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const bg = background(el);
    const fg = over({ ...parse(style.color), a: parse(style.color).a * opacity }, bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const name = el.dataset.testid || `${el.tagName.toLowerCase()}.${el.className}`;
      const text = el.textContent.trim().slice(0, 30);
      failures.push(`${name} "${text}" ${ratio.toFixed(2)}:1`);
    }
  }
  return failures;
}
"""


OFFLINE_LOAD_FAILURE = "Failed to load resource: net::ERR_INTERNET_DISCONNECTED"


@dataclass
class ConsoleWatch:
    """Console errors (of the pages and the service worker), uncaught page errors and CSP
    violations in one browser context."""

    errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("console", self._on_console)
        context.on("weberror", lambda error: self.errors.append(f"uncaught: {error.error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.text.startswith(OFFLINE_LOAD_FAILURE):
            # Chromium's own line for a request cut off by going offline (a sync that was
            # in flight when the test pulled the plug); the app handles the failure.
            return
        where = "service worker" if message.worker else "page"
        self.errors.append(f"console.error in the {where}: {message.text}")


class App:
    """One phone: a browser context with the app open in one page."""

    def __init__(self, context: BrowserContext, page: Page, base_url: str) -> None:
        self.context = context
        self.page = page
        self.base_url = base_url
        self.watch = ConsoleWatch()
        self.watch.attach(context)

    def tid(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    # --- loading and navigating -------------------------------------------------------

    async def open(self, hash_route: str = "") -> Response:
        """Load the app at `/` (with a hash route); the response to the page's request."""
        response = await self.page.goto(f"{self.base_url}/{hash_route}")
        assert response is not None
        await self.wait_ready()
        return response

    async def reload(self) -> None:
        await self.page.reload()
        await self.wait_ready()

    async def kill_and_reopen(self) -> None:
        """Crash the page's renderer (no pagehide, no unload: the phone killed the app),
        then open the app again in a new page of the same browser profile, at the hash
        route it was on."""
        hash_route = await self.page.evaluate("() => location.hash")
        cdp = await self.context.new_cdp_session(self.page)
        crashed = asyncio.create_task(self.page.wait_for_event("crash"))
        # A crashed renderer never answers the command: wait for the crash, not for it.
        crashing = asyncio.create_task(cdp.send("Page.crash"))
        try:
            await crashed
        finally:
            crashing.cancel()
        self.page = await self.context.new_page()
        await self.open(hash_route)

    async def wait_ready(self) -> None:
        await self.page.locator("body[data-ready=yes]").wait_for(state="attached")

    async def go(self, hash_route: str) -> None:
        """Follow an in-app link (a hash route) without reloading, and wait until the
        router has drawn the screen for it: two routes of one screen (a new task, then an
        edit) share their controls' test ids, so filling at once could type into the one
        being replaced."""
        await self.page.evaluate("(h) => { location.hash = h; }", hash_route)
        await self.page.wait_for_function("() => document.body.dataset.route === location.hash")

    async def expect_screen(self, screen: str) -> None:
        await expect(self.page.locator("body")).to_have_attribute("data-screen", screen)

    async def wait_controlled(self) -> None:
        """Until a service worker controls the page (so a reload works offline)."""
        assert await self.page.evaluate("() => window.fieldcrm.controlled()")

    # --- session ------------------------------------------------------------------------

    async def login(self, username: str, password: str = PASSWORD) -> None:
        if await self.page.locator("body[data-screen=login]").count() == 0:
            await self.go("#/login")
        await self.tid("login-username").fill(username)
        await self.tid("login-password").fill(password)
        await self.tid("login-submit").click()
        await self.expect_screen("today")
        await expect(self.page.locator("body")).to_have_attribute("data-signed-in", "yes")

    # --- sync ---------------------------------------------------------------------------

    async def sync(self) -> dict[str, Any]:
        """Run a sync to the end; the status it ended in."""
        status: dict[str, Any] = await self.page.evaluate("() => window.fieldcrm.syncNow()")
        return status

    @asynccontextmanager
    async def sync_in_flight(self) -> AsyncIterator[None]:
        """Start a sync and hold its request on the way to the server for the length of
        the block, so what the block does happens while it is in flight. The block ends
        once that sync, and any pass it queued meanwhile, is done."""
        held, release = asyncio.Event(), asyncio.Event()

        async def hold_the_first(route: Route) -> None:
            if not held.is_set():
                held.set()
                await release.wait()
            await route.continue_()

        await self.page.route(SYNC_URL, hold_the_first)
        syncing = asyncio.create_task(self.sync())
        try:
            await asyncio.wait_for(held.wait(), timeout=TIMEOUT_MS / 1000)
            yield
        finally:
            release.set()
            await syncing
            await self.page.unroute(SYNC_URL)

    @asynccontextmanager
    async def sync_held(self) -> AsyncIterator[None]:
        """Hold every sync request on its way to the server for the length of the block
        (the app is not told; its requests just wait), then let them go."""
        release = asyncio.Event()
        held: list[asyncio.Task[None]] = []

        async def let_go(route: Route) -> None:
            await release.wait()
            await route.continue_()

        async def hold(route: Route) -> None:
            held.append(asyncio.create_task(let_go(route)))

        await self.page.route(SYNC_URL, hold)
        try:
            yield
        finally:
            release.set()
            await asyncio.gather(*held)
            await self.page.unroute(SYNC_URL)

    async def synced(self) -> dict[str, Any]:
        """Sync and require that it worked and nothing is left to send."""
        status = await self.sync()
        assert status["state"] == "synced", status
        assert status["pending"] == 0, status
        return status

    async def set_offline(self, offline: bool) -> None:
        await self.context.set_offline(offline)

    async def expect_badge(self, state: str) -> None:
        await expect(self.tid("sync-badge")).to_have_attribute("data-state", state)

    async def expect_pending(self, count: int) -> None:
        pending = self.tid("pending-count")
        await expect(pending).to_have_attribute("data-count", str(count))
        if count:
            await expect(pending).to_have_text(f"{count} pending")
        else:
            await expect(pending).to_be_hidden()

    async def pending_count(self) -> int:
        return int(await self.page.evaluate("() => window.fieldcrm.pendingCount()"))

    async def outbox(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self.page.evaluate("() => window.fieldcrm.outbox()")
        return entries

    async def meta(self, key: str) -> Any:
        return await self.page.evaluate("(k) => window.fieldcrm.meta(k)", key)

    async def save(self, table: str, record_id: str, **fields: Any) -> None:
        """Queue an edit through the app's own write path (js/records.js saveWrites), as
        its forms do, without the screens: for tests about what happens to it next."""
        await self.page.evaluate(
            """async ([table, id, fields]) => {
              const records = await import("/js/records.js");
              await records.saveWrites([{ table, id, op: "upsert", fields }]);
            }""",
            [table, record_id, fields],
        )

    async def saved_drafts(self) -> list[dict[str, Any]]:
        """Every draft in the app's `drafts` store."""
        drafts: list[dict[str, Any]] = await self.page.evaluate("() => window.fieldcrm.drafts()")
        return drafts

    async def rows(self, table: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.page.evaluate(
            "(t) => window.fieldcrm.rows(t)", table
        )
        return rows

    # --- layout ---------------------------------------------------------------------------

    async def scroll_width(self) -> int:
        return int(await self.page.evaluate("() => document.documentElement.scrollWidth"))

    async def low_contrast(self) -> list[str]:
        """Visible text below WCAG AA contrast: `testid "text" ratio` for each."""
        failures: list[str] = await self.page.evaluate(LOW_CONTRAST)
        return failures

    # --- screens --------------------------------------------------------------------------

    @property
    def accounts(self) -> AccountsScreen:
        return AccountsScreen(self)

    @property
    def account(self) -> AccountScreen:
        return AccountScreen(self)

    @property
    def account_form(self) -> RecordForm:
        return RecordForm(self, "account-form")

    @property
    def task_form(self) -> RecordForm:
        return RecordForm(self, "task-form")

    @property
    def today(self) -> TodayScreen:
        return TodayScreen(self)

    @property
    def drafts(self) -> DraftsScreen:
        return DraftsScreen(self)

    @property
    def visit_form(self) -> VisitForm:
        return VisitForm(self)

    @property
    def visit(self) -> VisitScreen:
        return VisitScreen(self)

    @property
    def note_form(self) -> NoteForm:
        return NoteForm(self)

    @property
    def conflicts(self) -> ConflictsScreen:
        return ConflictsScreen(self)

    @property
    def tasks(self) -> TasksScreen:
        return TasksScreen(self)


class Screen:
    def __init__(self, app: App) -> None:
        self.app = app

    def tid(self, testid: str) -> Locator:
        return self.app.tid(testid)


class AccountsScreen(Screen):
    async def open(self) -> None:
        await self.tid("nav-accounts").click()
        await self.app.expect_screen("accounts")
        await expect(self.tid("account-list")).to_be_attached()

    def row(self, account_id: str) -> Locator:
        return self.app.page.locator(f'[data-testid=account-row][data-id="{account_id}"]')

    async def open_account(self, account_id: str) -> None:
        await self.row(account_id).get_by_test_id("account-open").click()
        await self.app.account.expect_open(account_id)

    async def new_account(self) -> None:
        await self.tid("account-new").click()
        await expect(self.tid("account-form")).to_be_visible()


class DraftForm(Screen):
    """What the forms that keep drafts (visit, note, task) share."""

    def notice(self) -> Locator:
        return self.tid("draft-notice")

    async def expect_kept(self) -> None:
        """Until the last edit is in the drafts store."""
        await expect(self.tid("draft-status")).to_have_attribute("data-state", "saved")

    async def expect_restored(self) -> None:
        await expect(self.notice()).to_be_visible()
        await expect(self.notice()).to_contain_text("Draft restored")

    async def expect_fresh(self) -> None:
        await expect(self.notice()).to_have_count(0)

    async def discard(self) -> None:
        """Discard the restored draft: a tap, then the one confirming tap."""
        button = self.notice().get_by_test_id("draft-discard")
        await button.click()
        await expect(button).to_have_text("Tap again to discard")
        await button.click()
        await self.expect_fresh()


class RecordForm(DraftForm):
    def __init__(self, app: App, testid: str) -> None:
        super().__init__(app)
        self.testid = testid

    async def fill(self, **values: str) -> None:
        form = self.tid(self.testid)
        await expect(form).to_be_visible()
        for name, value in values.items():
            await form.get_by_test_id(f"field-{name}").fill(value)

    async def values(self, *names: str) -> dict[str, str]:
        form = self.tid(self.testid)
        await expect(form).to_be_visible()
        return {name: await form.get_by_test_id(f"field-{name}").input_value() for name in names}

    async def save(self) -> None:
        await self.tid(self.testid).get_by_test_id("form-save").click()
        await expect(self.tid(self.testid)).to_have_count(0)


class AccountScreen(Screen):
    async def open(self, account_id: str) -> None:
        await self.app.go(f"#/account/{account_id}")
        await self.expect_open(account_id)

    async def expect_open(self, account_id: str) -> None:
        screen = self.app.page.locator(f'[data-testid=account-screen][data-id="{account_id}"]')
        await expect(screen).to_be_visible()

    async def log_visit(self) -> None:
        await self.tid("account-log-visit").click()
        await expect(self.tid("visit-form")).to_be_visible()

    async def add_note(self) -> None:
        await self.tid("account-add-note").click()
        await expect(self.tid("note-form")).to_be_visible()

    async def edit(self) -> None:
        await self.tid("account-edit").click()
        await expect(self.tid("account-form")).to_be_visible()

    def phone(self) -> Locator:
        return self.tid("account-phone")


VISIT_CONTROLS = (
    "visit-outcome",
    "visit-summary",
    "followup-title",
    "followup-due-at",
    "followup-remind-at",
)


class VisitForm(DraftForm):
    async def check_in(self) -> None:
        await self.tid("visit-checkin").click()
        await expect(self.tid("visit-position")).to_have_attribute("data-state", "located")

    async def fill(
        self, *, outcome: str | None = None, summary: str = "", followup: str = ""
    ) -> None:
        if outcome:
            await self.tid("visit-outcome").select_option(outcome)
        if summary:
            await self.tid("visit-summary").fill(summary)
        if followup:
            await self.tid("followup-title").fill(followup)

    async def values(self) -> dict[str, str]:
        """What every control holds, and the check-in line."""
        await expect(self.tid("visit-form")).to_be_visible()
        shown = {testid: await self.tid(testid).input_value() for testid in VISIT_CONTROLS}
        shown["visit-position"] = await self.tid("visit-position").inner_text()
        return shown

    async def save(self) -> str:
        """Save; the new visit's id (the app opens the visit)."""
        await self.tid("visit-save").click()
        screen = self.tid("visit-screen")
        await expect(screen).to_be_visible()
        visit_id = await screen.get_attribute("data-id")
        assert visit_id
        return visit_id


class VisitScreen(Screen):
    async def open(self, visit_id: str) -> None:
        await self.app.go(f"#/visit/{visit_id}")
        screen = self.app.page.locator(f'[data-testid=visit-screen][data-id="{visit_id}"]')
        await expect(screen).to_be_visible()

    def verification(self) -> Locator:
        return self.tid("visit-verification")

    async def add_note(self) -> None:
        await self.tid("visit-add-note").click()
        await expect(self.tid("note-form")).to_be_visible()


class NoteForm(DraftForm):
    async def type(self, body: str) -> None:
        """Type the note without saving it."""
        await self.tid("note-body").fill(body)

    def body(self) -> Locator:
        return self.tid("note-body")

    async def write(self, body: str) -> None:
        await self.tid("note-body").fill(body)
        await self.tid("note-save").click()
        await expect(self.tid("note-form")).to_have_count(0)


class ConflictsScreen(Screen):
    async def open(self) -> None:
        await self.tid("nav-conflicts").click()
        await self.app.expect_screen("conflicts")
        await expect(self.tid("conflict-count")).to_be_visible()

    def rows(self) -> Locator:
        return self.tid("conflict-row")


class TodayScreen(Screen):
    async def open(self) -> None:
        await self.tid("nav-today").click()
        await self.app.expect_screen("today")
        await expect(self.tid("today-tasks")).to_be_visible()

    def drafts_line(self) -> Locator:
        return self.tid("today-drafts")

    async def open_drafts(self) -> None:
        await self.drafts_line().click()
        await self.app.expect_screen("drafts")


class DraftsScreen(Screen):
    async def open(self) -> None:
        await self.app.go("#/drafts")
        await self.app.expect_screen("drafts")
        await expect(self.tid("drafts-count")).to_be_attached()

    def rows(self) -> Locator:
        return self.tid("draft-row")

    def row(self, key: str) -> Locator:
        return self.app.page.locator(f'[data-testid=draft-row][data-id="{key}"]')

    async def resume(self, key: str) -> None:
        await self.row(key).get_by_test_id("draft-open").click()

    async def discard(self, key: str) -> None:
        button = self.row(key).get_by_test_id("draft-row-discard")
        await button.click()
        await expect(button).to_have_text("Tap again to discard")
        await button.click()
        await expect(self.row(key)).to_have_count(0)


class TasksScreen(Screen):
    async def open(self) -> None:
        await self.tid("nav-tasks").click()
        await self.app.expect_screen("tasks")
        await expect(self.tid("task-list")).to_be_visible()

    def row(self, task_id: str) -> Locator:
        return self.app.page.locator(f'[data-testid=task-row][data-id="{task_id}"]')


class Phones:
    """Browser contexts for one test, each a phone at 360x740; closing them fails the test
    when any page logged a console error, threw, or broke the CSP."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.apps: list[App] = []

    async def open(self, base_url: str, **context_options: Any) -> App:
        options: dict[str, Any] = {"viewport": PHONE, **context_options}
        context = await self.browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        await context.add_init_script(CSP_REPORTER)
        page = await context.new_page()
        app = App(context, page, base_url)
        self.apps.append(app)
        return app

    async def signed_in(
        self, base_url: str, username: str, *, controlled: bool = True, **context_options: Any
    ) -> App:
        """A phone that opened the app, signed in as `username` and synced all it holds;
        with `controlled`, once its service worker controls the page (so it works
        offline)."""
        app = await self.open(base_url, **context_options)
        await app.open()
        await app.login(username)
        if controlled:
            await app.wait_controlled()
        await app.synced()
        return app

    def errors(self) -> list[str]:
        return [error for app in self.apps for error in app.watch.errors]

    async def close(self) -> None:
        for app in self.apps:
            try:
                await app.context.close()
            except Error:
                pass  # the browser already went away


class Rest:
    """The server's REST API as one user, to check what reached it."""

    def __init__(self, base_url: str, token: str, user: dict[str, Any]) -> None:
        self.user = user
        self.client = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    @classmethod
    async def login(cls, base_url: str, username: str, password: str = PASSWORD) -> Rest:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            response = await client.post(
                "/api/auth/login", json={"username": username, "password": password}
            )
        assert response.status_code == 200, response.text
        return cls(base_url, response.json()["token"], response.json()["user"])

    async def list(self, table: str, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/api/{table}", params={"limit": "200", **params})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def get(self, table: str, record_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/{table}/{record_id}")
        assert response.status_code == 200, response.text
        row: dict[str, Any] = response.json()
        return row

    async def create(self, table: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(f"/api/{table}", json=fields)
        assert response.status_code == 201, response.text
        row: dict[str, Any] = response.json()
        return row

    async def update(self, table: str, record_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.patch(f"/api/{table}/{record_id}", json=fields)
        assert response.status_code == 200, response.text
        row: dict[str, Any] = response.json()
        return row

    async def delete(self, table: str, record_id: str) -> None:
        response = await self.client.delete(f"/api/{table}/{record_id}")
        assert response.status_code == 204, response.text

    async def sync(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/api/sync/v1", json=body)

    async def close(self) -> None:
        await self.client.aclose()
