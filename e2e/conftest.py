"""End-to-end set-up: the real `fieldcrm serve` in a subprocess on a free port with its
own SQLite database, and real Chromium driven by Playwright's async API (function-scoped,
so it shares pytest-asyncio's loop; a session-scoped sync Playwright breaks later tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("FIELDCRM_CHROMIUM", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
PASSWORD = "secret-pw-1"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FIELDCRM = [sys.executable, "-m", "server.cli"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    users: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_user(self, username: str, role: str = "rep", team: str = "north") -> str:
        subprocess.run(
            [*FIELDCRM, "user", "add", username, "--password", PASSWORD, "--role", role,
             "--team", team],
            env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        return username


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'e2e.sqlite3'}",
        "FIELDCRM_DISPATCH_INTERVAL_S": "1",
        "FIELDCRM_BLOB_URL": f"file://{tmp / 'blobs'}",
        # Tests never reach out: no street tiles unless a test serves its own (test_map.py).
        "FIELDCRM_TILE_URL": "none",
        **(extra_env or {}),
    }
    subprocess.run([*FIELDCRM, "migrate"], env=env, check=True, capture_output=True)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [*FIELDCRM, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"fieldcrm serve exited: {(tmp / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("fieldcrm serve did not answer within 30 s")
        time.sleep(0.1)
    return Server(url=url, env=env, process=process)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh fieldcrm server for one test."""
    srv = start_server(tmp_path)
    yield srv
    srv.process.terminate()
    try:
        srv.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.process.kill()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run `make test` as root")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def phones(browser: Any) -> AsyncIterator[Any]:
    """Open the app in phone-sized browser contexts (`await phones.open(server.url)`); the
    test fails if any page logged a console error, threw, or broke the CSP."""
    from e2e.pages import Phones

    opened = Phones(browser)
    yield opened
    errors = opened.errors()
    await opened.close()
    assert not errors, "the app logged errors:\n" + "\n".join(errors)
