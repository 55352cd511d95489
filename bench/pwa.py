"""The PWA in real Chromium: how fast it opens, saves and syncs, and how big its shell is.

    .venv/bin/python bench/pwa.py [--runs 7] [--accounts 300] [--visits 20] [--queued 500]
                                  [--pwa-dir DIR]   (another copy of pwa/, to compare a change)

Runs the real server (`fieldcrm serve`, its own SQLite file) and Chromium at 360x740, a rep
signed in with `--accounts` accounts synced, and prints:

- cold load to interactive: a new tab opens `/#/accounts` and the first account row is on
  screen (in the DOM and one animation frame later). "First visit" is a browser that never
  saw the app (no service worker, nothing cached) opening `/` until the sign-in form shows.
  "Returning rep" loads have the service worker installed, stopped first (as after the phone
  put it to sleep), online and offline. Time is from the navigation's start
  (performance.now()), measured in the page, so Playwright's polling adds nothing;
- saving a visit offline: from the tap on "Save visit" (a capturing click listener) to the
  commit of the IndexedDB transaction that holds the outbox entry (IDBTransaction
  `complete`), and to the visit's screen being shown;
- syncing `--queued` visits queued offline: from the `online` event until the pending count
  shows 0 (a MutationObserver on pending-count's data-count), with the sync requests' times;
- the app shell's size: the precached files (sw.js's SHELL) and sw.js, raw and gzipped.

Targets: offline load to interactive < 500 ms, saving a visit < 50 ms, 500 queued visits
synced < 5 s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.async_api import Browser, BrowserContext, Page, async_playwright  # noqa: E402

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, Server, start_server  # noqa: E402

PHONE = {"width": 360, "height": 740}
USER = "bench"
LYON = (45.764, 4.8357)

# Timings taken inside the page (performance.now(), from the navigation's start).
PROBE = """
(() => {
  const bench = (window.__bench = {
    seen: {}, painted: {}, taps: [], commits: [], online: null, pendingZero: null,
  });
  const targets = {
    login: "[data-testid=login-form]",
    accounts: "[data-testid=account-row]",
    visitForm: "[data-testid=visit-form]",
    visitScreen: "[data-testid=visit-screen]",
  };
  let pendingWatched = false;
  const check = () => {
    for (const [name, selector] of Object.entries(targets)) {
      if (bench.seen[name] === undefined && document.querySelector(selector)) {
        bench.seen[name] = performance.now();
        requestAnimationFrame(() => { bench.painted[name] = performance.now(); });
      }
    }
    const pending = !pendingWatched && document.querySelector("[data-testid=pending-count]");
    if (pending) {
      pendingWatched = true;
      new MutationObserver(() => {
        if (bench.online !== null && bench.pendingZero === null && pending.dataset.count === "0") {
          bench.pendingZero = performance.now();
        }
      }).observe(pending, { attributes: true, attributeFilter: ["data-count"] });
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
  window.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("[data-testid=visit-save]")) {
      bench.taps.push(performance.now());
    }
  }, true);
  window.addEventListener("online", () => { bench.online = performance.now(); }, true);
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (names, mode, ...rest) {
    const tx = transaction.call(this, names, mode, ...rest);
    const stores = typeof names === "string" ? [names] : Array.from(names);
    if (mode === "readwrite" && stores.includes("outbox")) {
      tx.addEventListener("complete", () => bench.commits.push(performance.now()));
    }
    return tx;
  };
})();
"""

QUEUE_VISITS = """
async ({ accountId, count, lat, lng }) => {
  const { newId, saveWrites } = await import("/js/records.js");
  const started = performance.now();
  for (let i = 0; i < count; i += 1) {
    const now = new Date().toISOString();
    await saveWrites([{ table: "visits", id: newId(), op: "upsert", fields: {
      account_id: accountId, started_at: now, ended_at: now, lat, lng, accuracy_m: 10,
      outcome: "met", summary: `Queued visit ${i + 1} of ${count}.` } }]);
  }
  return performance.now() - started;
}
"""


def summary(values: list[float]) -> str:
    if not values:
        return "no data"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):7.1f} ms   min {ordered[0]:7.1f}   "
        f"p95 {p95:7.1f}   max {ordered[-1]:7.1f}   (n={len(ordered)})"
    )


def seed_accounts(server: Server, count: int) -> tuple[str, tuple[float, float]]:
    """`count` accounts around Lyon in one sync request; the first one's id and position."""
    rng = random.Random(7)
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": USER, "password": PASSWORD}
    )
    token = login.json()["token"]
    hlc_ms = int(time.time() * 1000)
    mutations = []
    for i in range(count):
        lat = LYON[0] + rng.uniform(-0.05, 0.05)
        lng = LYON[1] + rng.uniform(-0.07, 0.07)
        fields = {
            "name": f"Prospect {i + 1:04d}",
            "city": "Lyon",
            "lat": lat,
            "lng": lng,
            "phone": f"+33 4 {rng.randrange(10**8):08d}",
            "status": "prospect",
        }
        mutations.append(
            {
                "mid": i + 1,
                "table": "accounts",
                "id": str(uuid.uuid4()),
                "op": "upsert",
                "fields": fields,
                "base_seq": None,
                "hlc": [hlc_ms, i],
            }
        )
    response = httpx.post(
        f"{server.url}/api/sync/v1",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "protocol": 1,
            "client_id": str(uuid.uuid4()),
            "cursor": None,
            "pull_limit": 1,
            "mutations": mutations,
        },
        timeout=60,
    )
    response.raise_for_status()
    first = mutations[0]
    return first["id"], (first["fields"]["lat"], first["fields"]["lng"])


async def new_phone(browser: Browser) -> BrowserContext:
    context = await browser.new_context(viewport=PHONE)
    context.set_default_timeout(30_000)
    await context.add_init_script(PROBE)
    return context


async def bench_value(page: Page, expression: str) -> Any:
    return await page.evaluate(f"() => window.__bench.{expression}")


async def first_visit(browser: Browser, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        context = await new_phone(browser)
        page = await context.new_page()
        await page.goto(f"{url}/")
        await page.get_by_test_id("login-form").wait_for()
        await page.wait_for_function("() => window.__bench.painted.login !== undefined")
        times.append(await bench_value(page, "painted.login"))
        await context.close()
    return times


async def stop_service_workers(page: Page) -> None:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("ServiceWorker.enable")
    await cdp.send("ServiceWorker.stopAllWorkers")
    await cdp.detach()


async def returning_loads(context: BrowserContext, url: str, runs: int) -> dict[str, list[float]]:
    """New tabs on `/#/accounts`, the service worker stopped before each one."""
    result: dict[str, list[float]] = {"online": [], "offline": [], "ready_offline": []}
    for mode in ("online", "offline"):
        await context.set_offline(mode == "offline")
        for _ in range(runs):
            page = await context.new_page()
            await stop_service_workers(page)
            await page.goto(f"{url}/#/accounts")
            await page.get_by_test_id("account-row").first.wait_for()
            await page.wait_for_function("() => window.__bench.painted.accounts !== undefined")
            result[mode].append(await bench_value(page, "painted.accounts"))
            if mode == "offline":
                await page.locator("body[data-ready=yes]").wait_for(state="attached")
                ready = await page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
                result["ready_offline"].append(ready)
            await page.close()
    await context.set_offline(False)
    return result


async def save_visits_offline(page: Page, account_id: str, count: int) -> dict[str, list[float]]:
    result: dict[str, list[float]] = {"commit": [], "shown": []}
    await page.context.set_offline(True)
    for i in range(count):
        await page.evaluate("(h) => { location.hash = h; }", f"#/visit/new?account={account_id}")
        await page.get_by_test_id("visit-form").wait_for()
        await page.get_by_test_id("visit-summary").fill(f"Saved offline, visit {i + 1}.")
        await page.evaluate(
            "() => { const b = window.__bench; b.taps = []; b.commits = []; "
            "delete b.seen.visitScreen; delete b.painted.visitScreen; }"
        )
        await page.get_by_test_id("visit-save").click()
        await page.get_by_test_id("visit-screen").wait_for()
        await page.wait_for_function("() => window.__bench.painted.visitScreen !== undefined")
        bench = await page.evaluate("() => window.__bench")
        tap = bench["taps"][0]
        result["commit"].append(min(c for c in bench["commits"] if c >= tap) - tap)
        result["shown"].append(bench["painted"]["visitScreen"] - tap)
    await page.context.set_offline(False)
    return result


async def sync_queued(
    page: Page, account_id: str, position: tuple[float, float], count: int
) -> dict[str, Any]:
    status = await page.evaluate("() => window.fieldcrm.syncNow()")
    assert status["pending"] == 0, status
    await page.context.set_offline(True)
    await page.evaluate("(h) => { location.hash = h; }", "#/today")
    queue_ms = await page.evaluate(
        QUEUE_VISITS,
        {"accountId": account_id, "count": count, "lat": position[0], "lng": position[1]},
    )
    pending = await page.evaluate("() => window.fieldcrm.pendingCount()")
    await page.evaluate(
        "() => { performance.clearResourceTimings(); window.__bench.pendingZero = null; }"
    )
    await page.context.set_offline(False)
    await page.wait_for_function(
        "() => window.__bench.pendingZero !== null", timeout=120_000, polling=50
    )
    bench = await page.evaluate("() => window.__bench")
    requests = await page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".filter((e) => e.name.endsWith('/api/sync/v1'))"
        ".map((e) => ({start: e.startTime, duration: e.duration, size: e.encodedBodySize}))"
    )
    return {
        "pending": pending,
        "queue_ms": queue_ms,
        "sync_ms": bench["pendingZero"] - bench["online"],
        # Request times from the online event: what the server took, and what is left
        # (storing the answer in IndexedDB, the status) is the phone's.
        "requests": [
            {**r, "start": r["start"] - bench["online"]}
            for r in requests
            if r["start"] >= bench["online"]
        ],
    }


def shell_size(pwa: Path) -> tuple[int, int, int, int]:
    """(files, raw bytes, gzip -9 bytes, gzip -6 bytes) of the precached shell and sw.js."""
    sw = (pwa / "sw.js").read_text()
    block = re.search(r"const SHELL = (\[.*?\]);", sw, re.S)
    assert block, "sw.js has no SHELL list"
    urls = json.loads(re.sub(r",\s*\]", "]", block.group(1)))
    paths = [pwa / ("index.html" if u == "/" else u.lstrip("/")) for u in urls]
    paths.append(pwa / "sw.js")
    raw = sum(p.stat().st_size for p in paths)
    zipped = sum(len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0)) for p in paths)
    served = sum(len(gzip.compress(p.read_bytes(), compresslevel=6, mtime=0)) for p in paths)
    return len(paths), raw, zipped, served


def server_visits(tmp: Path) -> int:
    with sqlite3.connect(tmp / "e2e.sqlite3") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM visits WHERE deleted = 0").fetchone()[0])


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fieldcrm-bench-pwa-"))
    pwa: Path = args.pwa_dir
    server = start_server(tmp, {"FIELDCRM_PWA_DIR": str(pwa)})
    try:
        server.add_user(USER)
        account_id, position = seed_accounts(server, args.accounts)
        print(f"fieldcrm PWA bench: {pwa} served at {server.url}, Chromium at 360x740")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            first = await first_visit(browser, server.url, args.runs)

            context = await new_phone(browser)
            page = await context.new_page()
            await page.goto(f"{server.url}/")
            await page.get_by_test_id("login-username").fill(USER)
            await page.get_by_test_id("login-password").fill(PASSWORD)
            await page.get_by_test_id("login-submit").click()
            await page.locator("body[data-screen=today]").wait_for(state="attached")
            await page.evaluate("() => window.fieldcrm.controlled()")
            status = await page.evaluate("() => window.fieldcrm.syncNow()")
            assert status["state"] == "synced", status
            local = await page.evaluate(
                "async () => (await window.fieldcrm.rows('accounts')).length"
            )
            await page.close()

            loads = await returning_loads(context, server.url, args.runs)

            page = await context.new_page()
            await page.goto(f"{server.url}/#/today")
            await page.locator("body[data-ready=yes]").wait_for(state="attached")
            saves = await save_visits_offline(page, account_id, args.visits)
            queued = await sync_queued(page, account_id, position, args.queued)
            await context.close()
            await browser.close()
        on_server = server_visits(tmp)
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)

    files, raw, zipped, served = shell_size(pwa)
    print(f"\nrep's phone holds {local} accounts")
    print("\ncold load to interactive (first account row on screen; sign-in form on a first visit)")
    print(f"  first visit, online, nothing cached   {summary(first)}")
    print(f"  returning rep, online                 {summary(loads['online'])}")
    print(f"  returning rep, offline                {summary(loads['offline'])}   target < 500")
    print(f"    (DOMContentLoaded, offline          {summary(loads['ready_offline'])})")
    print("\nsave a visit offline (from the tap on Save visit)")
    print(f"  outbox transaction committed          {summary(saves['commit'])}   target < 50")
    print(f"  the visit's screen shown              {summary(saves['shown'])}")
    print(f"\nsync {queued['pending']} visits queued offline, after reconnecting")
    print(
        f"  queued in {queued['queue_ms']:.0f} ms ({queued['queue_ms'] / args.queued:.2f} ms each)"
    )
    print(f"  online event -> pending 0             {queued['sync_ms']:8.1f} ms   target < 5000")
    for r in queued["requests"]:
        end = r["start"] + r["duration"]
        print(
            f"    POST /api/sync/v1 from +{r['start']:5.0f} ms to +{end:5.0f} ms, "
            f"{r['size']} bytes answered"
        )
    print(
        f"  visits on the server                  {on_server} "
        f"(expected {args.visits + args.queued})"
    )
    print("\napp shell (precached files + sw.js)")
    print(
        f"  {files} files, {raw / 1024:.1f} KiB raw, {zipped / 1024:.1f} KiB gzip -9 "
        f"({served / 1024:.1f} KiB at the server's gzip level 6); budget 100 KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="loads of each kind")
    parser.add_argument("--accounts", type=int, default=300, help="accounts the rep holds")
    parser.add_argument("--visits", type=int, default=20, help="visits saved through the form")
    parser.add_argument("--queued", type=int, default=500, help="visits queued, then synced")
    parser.add_argument("--pwa-dir", help="serve this copy of pwa/ instead of the repo's")
    args = parser.parse_args()
    args.pwa_dir = Path(args.pwa_dir).resolve() if args.pwa_dir else ROOT / "pwa"
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
