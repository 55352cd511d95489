"""The installable app is served from the settings' pwa_dir (FIELDCRM_PWA_DIR): pwa/ by
default, another copy when configured (the e2e update test releases a new version so)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server.settings import DEFAULT_PWA_DIR, Settings, load_settings


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    copy = tmp_path / "pwa"
    shutil.copytree(DEFAULT_PWA_DIR, copy)
    (copy / "index.html").write_text("<!doctype html><title>a copy</title>")
    (copy / "js" / "copy.js").write_text("export const copy = true;\n")
    pwa_dir = load_settings({"FIELDCRM_PWA_DIR": str(copy)}).pwa_dir
    return msgspec.structs.replace(settings, pwa_dir=pwa_dir)


async def test_the_configured_copy_of_the_app_is_served(client: Any, settings: Settings) -> None:
    index = await client.get("/")
    assert index.status_code == 200 and "a copy" in index.text
    assert (await client.get("/js/copy.js")).text == "export const copy = true;\n"
    worker = await client.get("/sw.js")
    assert worker.content == (settings.pwa_dir / "sw.js").read_bytes()
    assert worker.headers["cache-control"] == "no-cache"
    manifest = await client.get("/manifest.webmanifest")
    assert manifest.content == (DEFAULT_PWA_DIR / "manifest.webmanifest").read_bytes()
    french = await client.get("/manifest.fr.webmanifest")
    assert french.content == (DEFAULT_PWA_DIR / "manifest.fr.webmanifest").read_bytes()
    assert french.headers["content-type"].startswith("application/manifest+json")
    assert (await client.get("/manifest.de.webmanifest")).status_code == 404


async def test_a_server_without_the_app_says_so(client: Any, settings: Settings) -> None:
    (settings.pwa_dir / "index.html").unlink()
    response = await client.get("/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_screens_loaded_on_demand_are_always_revalidated(client: Any) -> None:
    """They are not in the worker's precache: the browser must ask again each time (a 304
    when unchanged), or a new version of the app could run an old copy of one."""
    screen = await client.get("/js/online/import.js")
    assert screen.status_code == 200 and "importScreen" in screen.text
    assert screen.headers["cache-control"] == "no-cache"
    assert "no-cache" not in (await client.get("/js/app.js")).headers.get("cache-control", "")
