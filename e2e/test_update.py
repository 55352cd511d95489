"""A new release of the app reaches a phone through the "update ready" prompt: the new
service worker waits until the rep taps Reload, then the page reloads under it, the new
shell cache is in place and the old one is gone. The test serves its own copy of pwa/
(FIELDCRM_PWA_DIR) so it can release a new version of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from e2e.conftest import Server, start_server
from e2e.pages import App, Phones

REPO_PWA = Path(__file__).resolve().parent.parent / "pwa"
VERSION = re.compile(r'const VERSION = "([0-9a-f]+)";')
MARK = "/* e2e: the next release */"


@pytest.fixture
def pwa_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "pwa"
    shutil.copytree(REPO_PWA, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture
def own_server(tmp_path: Path, pwa_copy: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, {"FIELDCRM_PWA_DIR": str(pwa_copy)})
    yield srv
    srv.process.terminate()
    try:
        srv.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.process.kill()


def version_of(pwa: Path) -> str:
    match = VERSION.search((pwa / "sw.js").read_text())
    assert match, "sw.js has no VERSION"
    return match.group(1)


def release(pwa: Path) -> str:
    """Change a shell file and stamp sw.js, as a deploy does; the new version."""
    css = pwa / "css" / "app.css"
    css.write_text(css.read_text() + f"\n{MARK}\n")
    subprocess.run(
        [sys.executable, str(pwa / "tools" / "stamp_sw.py")], check=True, capture_output=True
    )
    return version_of(pwa)


async def shell_caches(app: App) -> list[str]:
    names: list[str] = await app.page.evaluate(
        "async () => (await caches.keys()).filter((k) => k.startsWith('fieldcrm-shell-'))"
    )
    return sorted(names)


async def test_new_version_waits_for_the_prompt(
    own_server: Server, pwa_copy: Path, phones: Phones
) -> None:
    own_server.add_user("alice")
    old = version_of(pwa_copy)
    app = await phones.open(own_server.url)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()
    assert await shell_caches(app) == [f"fieldcrm-shell-{old}"]
    await app.page.evaluate("() => { window.e2eSameDocument = true; }")

    new = release(pwa_copy)
    assert new != old
    await app.page.evaluate(
        "async () => { await (await navigator.serviceWorker.getRegistration()).update(); }"
    )
    await expect(app.tid("update-ready")).to_be_visible()
    # The new worker waits: the page still runs the old version until the rep says so.
    assert await app.page.evaluate("() => window.e2eSameDocument === true")
    assert await app.page.evaluate(
        "async () => !!(await navigator.serviceWorker.getRegistration()).waiting"
    )

    async with app.page.expect_navigation():
        await app.tid("update-reload").click()
    await app.wait_ready()
    assert await app.page.evaluate("() => window.e2eSameDocument === undefined")
    await expect(app.tid("update-ready")).to_be_hidden()
    await app.expect_screen("today")  # still signed in, on the same screen

    # The new worker is active (its activate step deleted the old shell) and serves it.
    await app.page.evaluate(
        """() => new Promise((resolve) => {
             const worker = navigator.serviceWorker.controller;
             if (worker.state === "activated") resolve();
             else worker.addEventListener("statechange", () => {
               if (worker.state === "activated") resolve();
             });
           })"""
    )
    assert await shell_caches(app) == [f"fieldcrm-shell-{new}"]
    css = await app.page.evaluate("async () => (await fetch('/css/app.css')).text()")
    assert MARK in css
    assert not await app.page.evaluate(
        "async () => !!(await navigator.serviceWorker.getRegistration()).waiting"
    )
    await app.tid("nav-settings").click()
    await expect(app.tid("me-app-version")).to_have_text(f"fieldcrm-shell-{new}")
