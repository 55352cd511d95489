"""End-to-end set-up: the real `fieldcrm serve` in a subprocess on a free port with its
own SQLite database, and real Chromium driven by Playwright's async API (function-scoped,
so it shares pytest-asyncio's loop; a session-scoped sync Playwright breaks later tests)."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
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


_TEMPLATE: list[Path] = []


def migrated_template() -> Path:
    """One database migrated by `fieldcrm migrate` per test process (a run of it takes 2-3
    s), copied for each server that starts on an empty folder."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="fieldcrm-e2e-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.sqlite3"
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
        subprocess.run([*FIELDCRM, "migrate"], env=env, check=True, capture_output=True)
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


def fresh_database(path: Path) -> None:
    """A copy of the migrated template, with an identity of its own (as a migration of its
    own would give it: a phone's cursor from another test's server is not honoured)."""
    shutil.copyfile(migrated_template(), path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sync_meta SET value = ? WHERE key = 'epoch'", (secrets.token_hex(8),))
    conn.close()


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    database = tmp / "e2e.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "FIELDCRM_DISPATCH_INTERVAL_S": "1",
        "FIELDCRM_BLOB_URL": f"file://{tmp / 'blobs'}",
        # Tests never reach out: no street tiles unless a test serves its own (test_map.py).
        "FIELDCRM_TILE_URL": "none",
        **(extra_env or {}),
    }
    if env["DATABASE_URL"] == f"sqlite:///{database}" and not database.exists():
        fresh_database(database)
    else:  # another database, or one a server used before: migrate it as an operator would
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
