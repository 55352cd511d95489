"""What French costs a phone: cold loads of the PWA in English and in French, and the French
catalogue's size.

    .venv/bin/python bench/i18n.py [--runs 7] [--accounts 300]

Runs the real server and Chromium at 360x740 twice, a phone in `en-GB` and one in `fr-FR`
(navigator.languages), each signed in with `--accounts` accounts synced, and prints the
cold load to interactive of a returning rep (a new tab on `/#/accounts` until the first
account row is on screen, the service worker stopped first; as bench/pwa.py measures it),
online and offline, and how long the French phone's page spent fetching js/lang/fr.js
(from the service worker's cache). English imports no catalogue (docs/i18n.md). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from bench.pwa import PHONE, PROBE, USER, returning_loads, seed_accounts, summary  # noqa: E402
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, start_server  # noqa: E402

CATALOGUE = ROOT / "pwa" / "js" / "lang" / "fr.js"
CATALOGUE_FETCH = """
() => performance.getEntriesByType("resource")
  .filter((e) => e.name.endsWith("/js/lang/fr.js")).map((e) => e.duration)
"""


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fieldcrm-bench-i18n-"))
    server = start_server(tmp)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        server.add_user(USER)
        seed_accounts(server, args.accounts)
        print(f"fieldcrm i18n bench at {server.url}, Chromium at 360x740, {args.runs} runs each")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            for locale in ("en-GB", "fr-FR"):
                context = await browser.new_context(viewport=PHONE, locale=locale)
                context.set_default_timeout(30_000)
                await context.add_init_script(PROBE)
                page = await context.new_page()
                await page.goto(f"{server.url}/")
                await page.get_by_test_id("login-username").fill(USER)
                await page.get_by_test_id("login-password").fill(PASSWORD)
                await page.get_by_test_id("login-submit").click()
                await page.locator("body[data-screen=today]").wait_for(state="attached")
                await page.evaluate("() => window.fieldcrm.controlled()")
                status = await page.evaluate("() => window.fieldcrm.syncNow()")
                assert status["state"] == "synced", status
                await page.close()
                results[locale] = await returning_loads(context, server.url, args.runs)
                page = await context.new_page()
                await page.goto(f"{server.url}/#/accounts")
                await page.locator("body[data-ready=yes]").wait_for(state="attached")
                results[locale]["catalogue"] = await page.evaluate(CATALOGUE_FETCH)
                await context.close()
            await browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)

    print("\ncold load to interactive, returning rep (first account row on screen)")
    for locale, loads in results.items():
        print(f"  {locale}, online    {summary(loads['online'])}")
        print(f"  {locale}, offline   {summary(loads['offline'])}")
    print("\nthe French catalogue (js/lang/fr.js)")
    raw = CATALOGUE.read_bytes()
    print(f"  {len(raw) / 1024:.1f} KiB raw, {len(gzip.compress(raw, 9)) / 1024:.1f} KiB gzip -9")
    print(f"  fetched by the French page in    {summary(results['fr-FR']['catalogue'])}")
    print(f"  fetched by the English page: {len(results['en-GB']['catalogue'])} times")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="loads of each kind")
    parser.add_argument("--accounts", type=int, default=300, help="accounts the rep holds")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
