"""Photos uploaded after reconnecting: the PWA in real Chromium against the real server.

    .venv/bin/python bench/attachments.py [--photos 20] [--runs 3] [--engine sqlite|postgres]

Runs `fieldcrm serve` (its own database and blob folder) and Chromium at 360x740. Per run, a
rep offline takes `--photos` camera photos (3000x2000 JPEG, about 2 MB each) on a visit:
each is shrunk on the phone to 1,600 px, hashed and kept in IndexedDB. Then the phone goes
online and the clock runs from the `online` event until every photo is held by the server
(the phone's pending count is 0, and the server's blob folder has them all): the sync that
sends the rows, then the uploads, one at a time. Also timed: taking the photos (shrinking
and hashing on the phone, per photo), and the server's side alone, `--photos` uploads of
the same shrunk JPEGs over one HTTP connection (each checked: hash, Pillow's verify).

Target: 20 photos uploaded after reconnect < 10 s on loopback. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.async_api import Page, async_playwright  # noqa: E402

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, Server, start_server  # noqa: E402

PHONE = {"width": 360, "height": 740}
USER = "bench"
SHOP = (45.764, 4.8357)
KEPT = """async () => (await window.fieldcrm.rows("blobs")).filter((b) => b.pending).length"""
# Timed in the page: from the `online` event until the pending captures are none.
WATCH = """() => new Promise((resolve) => {
  window.addEventListener("online", () => {
    const start = performance.now();
    const poll = async () => {
      const left = (await window.fieldcrm.rows("blobs")).filter((b) => b.pending).length;
      if (left === 0) resolve(performance.now() - start);
      else setTimeout(poll, 20);
    };
    poll();
  }, { once: true });
})"""


def camera_photos(folder: Path, count: int, run: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = folder / f"IMG_{run}_{n}.jpg"
        Image.effect_noise((3000, 2000), 30 + n + run * count).convert("RGB").save(
            path, "JPEG", quality=90
        )
        paths.append(path)
    return paths


def blob_files(server: Server) -> list[Path]:
    root = Path(server.env["FIELDCRM_BLOB_URL"].removeprefix("file://"))
    return [Path(d, f) for d, _, files in os.walk(root) for f in files]


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.0f} ms"
    low, high = min(values), max(values)
    return f"median {statistics.median(values):.0f} ms (min {low:.0f}, max {high:.0f})"


async def rest(server: Server) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=30)
    response = await client.post("/api/auth/login", json={"username": USER, "password": PASSWORD})
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return client


async def phone_run(page: Page, account_id: str, photos: list[Path]) -> dict[str, float]:
    context = page.context
    await context.set_offline(True)
    await page.goto(f"{page.url.split('#')[0]}#/visit/new?account={account_id}")
    await page.get_by_test_id("visit-form").wait_for()
    started = time.perf_counter()
    await page.get_by_test_id("attach-photo-input").set_input_files([str(p) for p in photos])
    await page.locator("[data-testid=attach-held-item]").nth(len(photos) - 1).wait_for()
    taking = (time.perf_counter() - started) * 1000
    await page.get_by_test_id("visit-save").click()
    await page.get_by_test_id("visit-screen").wait_for()
    assert await page.evaluate(KEPT) == len(photos)
    uploaded = asyncio.ensure_future(page.evaluate(WATCH))
    await asyncio.sleep(0.2)  # the listener is in place
    await context.set_offline(False)
    reconnect = float(await uploaded)
    return {"taking": taking, "reconnect": reconnect}


async def server_alone(server: Server, account_id: str, count: int, run: int) -> float:
    """`count` uploads of shrunk photos over one connection, rows made first."""
    client = await rest(server)
    try:
        bodies = []
        for n in range(count):
            out = io.BytesIO()
            image = Image.effect_noise((1600, 1067), 500 + n + run * count).convert("RGB")
            image.save(out, "JPEG", quality=82)
            data = out.getvalue()
            sha = hashlib.sha256(data).hexdigest()
            await client.post("/api/attachments", json={
                "account_id": account_id, "sha256": sha, "media_type": "image/jpeg",
                "bytes": len(data)})  # fmt: skip
            bodies.append((sha, data))
        started = time.perf_counter()
        for sha, data in bodies:
            response = await client.put(
                f"/api/attachments/blobs/{sha}",
                content=data,
                headers={"Content-Type": "image/jpeg"},
            )
            assert response.status_code == 201, response.text
        return (time.perf_counter() - started) * 1000
    finally:
        await client.aclose()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fieldcrm-bench-attachments-") as tmp_name:
        tmp = Path(tmp_name)
        extra: dict[str, str] = {}
        if args.engine == "postgres":
            from bench.support import PG_HOST, PG_PORT, PG_USER, _pg_admin

            name = f"fieldcrm_bench_{os.getpid()}"
            await _pg_admin(f'CREATE DATABASE "{name}"')
            extra["DATABASE_URL"] = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        server = start_server(tmp, extra)
        try:
            server.add_user(USER)
            client = await rest(server)
            account = (await client.post("/api/accounts", json={
                "name": "Bench shop", "lat": SHOP[0], "lng": SHOP[1]})).json()  # fmt: skip
            await client.aclose()
            photo_bytes = []
            timings: dict[str, list[float]] = {"taking": [], "reconnect": [], "server": []}
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                context = await browser.new_context(viewport=PHONE)
                page = await context.new_page()
                await page.goto(server.url + "/")
                await page.get_by_test_id("login-username").fill(USER)
                await page.get_by_test_id("login-password").fill(PASSWORD)
                await page.get_by_test_id("login-submit").click()
                await page.locator("body[data-ready=yes]").wait_for()
                await page.evaluate("() => window.fieldcrm.syncNow()")
                for n in range(args.runs):
                    photos = camera_photos(tmp, args.photos, n)
                    photo_bytes += [p.stat().st_size for p in photos]
                    figures = await phone_run(page, account["id"], photos)
                    for key, value in figures.items():
                        timings[key].append(value)
                    held = len(blob_files(server))
                    print(f"run {n + 1}: {args.photos} photos, {held} held by the server")
                await browser.close()
            for n in range(args.runs):
                timings["server"].append(
                    await server_alone(server, account["id"], args.photos, n + 100)
                )
            stored = blob_files(server)
            shrunk = [p.stat().st_size for p in stored]
        finally:
            server.process.terminate()
            server.process.wait(timeout=10)
            if args.engine == "postgres":
                await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\n{args.photos} photos per run, {args.runs} runs, {args.engine}")
    print(f"camera photos: {statistics.mean(photo_bytes) / 1e6:.1f} MB each on average")
    print(f"kept on the server: {len(stored)} files, {statistics.mean(shrunk) / 1e3:.0f} kB each")
    print(f"taking them on the phone (shrink + hash, all): {summary(timings['taking'])}")
    print(f"uploaded after reconnect (target < 10 s): {summary(timings['reconnect'])}")
    print(f"the server alone, {args.photos} uploads: {summary(timings['server'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
