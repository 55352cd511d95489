"""The server's write limits (docs/limits.md) seen from a phone, in real Chromium against
the real server run with small limits: a request refused with 429 (the rep's write rate)
or 413 (the team's storage quota) leaves every write in the outbox, the app says so
plainly, and the same writes reach the server once, when the limit lifts."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from e2e.conftest import Server, start_server
from e2e.pages import App, Phones, Rest
from e2e.test_screens import check_screen

# Chromium's own console line for an answer with an error status (the app handles it).
REFUSED = "Failed to load resource: the server responded with a status of {}"


def serve(tmp_path: Path, **env: str) -> Iterator[Server]:
    server = start_server(tmp_path, env)
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def rate_limited(tmp_path: Path) -> Iterator[Server]:
    """One write a second, three at once."""
    yield from serve(tmp_path, FIELDCRM_WRITE_RATE_PER_MIN="60", FIELDCRM_WRITE_BURST="3")


@pytest.fixture
def small_quota(tmp_path: Path) -> Iterator[Server]:
    yield from serve(tmp_path, FIELDCRM_TEAM_QUOTA_RECORDS="3")


def expected_refusals(app: App, status: int) -> None:
    """The console lines Chromium writes for the refusals the test causes, and no other."""
    app.watch.errors[:] = [e for e in app.watch.errors if REFUSED.format(status) not in e]


async def queue_accounts(app: App, *names: str) -> list[str]:
    ids = []
    for name in names:
        ids.append(str(uuid.uuid4()))
        await app.save("accounts", ids[-1], name=name)
    return ids


async def test_over_the_write_rate_the_outbox_waits_and_goes_later(
    rate_limited: Server, phones: Phones, artifacts: Path
) -> None:
    rate_limited.add_user("alice")
    app = await phones.open(rate_limited.url)
    await app.open()
    await app.login("alice")
    await queue_accounts(app, "Boulangerie Martin", "Café du Port", "Garage Leroy")
    await app.synced()  # the whole burst

    late = await queue_accounts(app, "Fleuriste Roux", "Pharmacie Blanc")
    status = await app.sync()
    assert status["state"] == "limited", status
    await app.expect_badge("limited")
    await app.expect_pending(2)
    held = app.tid("sync-held")
    await expect(held).to_be_visible()
    await expect(held).to_have_attribute("data-state", "limited")
    await expect(app.tid("sync-held-text")).to_contain_text(
        "The server is busy. Your 2 unsent changes are kept on this phone"
    )
    outbox = await app.outbox()
    assert [(e["id"], e["mid"]) for e in outbox] == [(late[0], 4), (late[1], 5)]
    await app.page.screenshot(path=artifacts / "screen-sync-limited.png")

    # After Retry-After, the app sends the same writes again by itself.
    await app.expect_badge("synced")
    await app.expect_pending(0)
    await expect(held).to_be_hidden()
    rest = await Rest.login(rate_limited.url, "alice")
    try:
        names = sorted(a["name"] for a in await rest.list("accounts"))
    finally:
        await rest.close()
    assert names == sorted(
        ["Boulangerie Martin", "Café du Port", "Garage Leroy", "Fleuriste Roux", "Pharmacie Blanc"]
    )
    expected_refusals(app, 429)


async def test_a_full_team_keeps_the_outbox_until_there_is_room(
    small_quota: Server, phones: Phones, artifacts: Path
) -> None:
    small_quota.add_user("alice")
    app = await phones.open(small_quota.url)
    await app.open()
    await app.login("alice")
    first, *_ = await queue_accounts(app, "Boulangerie Martin", "Café du Port", "Garage Leroy")
    await app.synced()

    [late] = await queue_accounts(app, "Fleuriste Roux")
    status = await app.sync()
    assert status["state"] == "quota", status
    await app.expect_badge("quota")
    await app.expect_pending(1)
    await expect(app.tid("sync-held")).to_have_attribute("data-state", "quota")
    await expect(app.tid("sync-held-text")).to_contain_text(
        "Your team's storage on the server is full. Your unsent change is kept on this phone"
    )
    assert [e["id"] for e in await app.outbox()] == [late]
    await check_screen(app, artifacts, "sync-quota", "sync-held-text")
    for percent in (150, 200):  # the phone's text size turned up
        await app.page.evaluate(
            "(p) => { document.documentElement.style.fontSize = `${p}%`; }", percent
        )
        await check_screen(app, artifacts, f"sync-quota-text{percent}", "sync-held-text")
    await app.page.evaluate("() => { document.documentElement.style.fontSize = ''; }")

    # Someone frees space (a delete always passes); the next sync sends the write, once.
    rest = await Rest.login(small_quota.url, "alice")
    try:
        await rest.delete("accounts", first)
        await app.synced()
        names = sorted(a["name"] for a in await rest.list("accounts"))
    finally:
        await rest.close()
    assert names == ["Café du Port", "Fleuriste Roux", "Garage Leroy"]
    await expect(app.tid("sync-held")).to_be_hidden()
    expected_refusals(app, 413)
