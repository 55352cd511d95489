"""The phone's duplicate check (SPEC section 9) in real Chromium, against the accounts a
phone holds in IndexedDB.

    .venv/bin/python bench/pwa_duplicates.py [--accounts 10000] [--runs 30]

Runs the real server (`fieldcrm serve`, its own SQLite file), seeds --accounts accounts
around Lyon for a rep (names of a few shapes, phones, emails, some websites; sent through
the sync endpoint, 1,000 a request), signs the rep in on a phone at 360x740 and syncs them
all into IndexedDB. Then, in the page (performance.now(), so Playwright adds nothing):

- the check for --runs candidates (a third alike a held account a few metres away, a third
  sharing a phone written nationally, a third matching nothing): cold (the accounts read
  from IndexedDB, then compared; the read and the comparison timed apart), and as "Save"
  runs it, the accounts and their keys already made (`heldAccounts()`: the account form and
  Nearby's capture make them when they open, and again after each change of local rows);
- the same from the tap on "Save" of the new-account form to the warning on screen.

Target (issue 15): under 50 ms against 10,000 accounts. The machine (2 cores, maybe shared)
runs the server and Chromium at once. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
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
from playwright.async_api import async_playwright  # noqa: E402

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, start_server  # noqa: E402

PHONE = {"width": 360, "height": 740}
USER = "bench"
LYON = (45.764, 4.8357)
WORDS = ["Électricité", "Boulangerie", "Garage", "Fleurs", "Pharmacie", "Café", "Hôtel",
         "Plomberie", "Librairie", "Optique", "Coiffure", "Menuiserie"]  # fmt: skip
NAMES = ["Laurent", "Martin", "Dupont", "Bernard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Michel", "Lefebvre", "Garcia", "Roux", "Fournier", "Girard"]  # fmt: skip

CHECK = """
async (candidate) => {
  const { allRows } = await import("/js/records.js");
  const { heldAccounts, likelyDuplicates } = await import("/js/duplicates.js");
  const started = performance.now();
  const rows = await allRows("accounts");
  const read = performance.now();
  const [cold] = likelyDuplicates(candidate, rows, 1);
  const compared = performance.now();
  await heldAccounts();  // as the form has it ready (keepWarm)
  const warmStart = performance.now();
  const [match] = likelyDuplicates(candidate, await heldAccounts(), 1);
  const warm = performance.now();
  return { read: read - started, compare: compared - read, cold: compared - started,
           warm: warm - warmStart, held: rows.length, found: match ? match.account.name : null,
           same: (cold && cold.account.id) === (match && match.account.id) };
}
"""

HELD = "async () => (await window.fieldcrm.rows('accounts')).length"

TAP_TO_WARNING = """
() => new Promise((resolve) => {
  const save = document.querySelector("[data-testid=account-form] [data-testid=form-save]");
  const started = performance.now();
  const seen = new MutationObserver(() => {
    const warning = document.querySelector("[data-testid=duplicate-warning]");
    if (warning && !warning.hidden) {
      seen.disconnect();
      requestAnimationFrame(() => resolve(performance.now() - started));
    }
  });
  seen.observe(document.body, { subtree: true, childList: true, attributes: true });
  save.click();
})
"""


def seed(url: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    token = httpx.post(
        f"{url}/api/auth/login", json={"username": USER, "password": PASSWORD}
    ).json()["token"]
    accounts: list[dict[str, Any]] = []
    client_id, hlc_ms = str(uuid.uuid4()), int(time.time() * 1000)
    for start in range(0, count, 1000):
        mutations = []
        for i in range(start, min(count, start + 1000)):
            fields = {
                "name": f"{rng.choice(WORDS)} {rng.choice(NAMES)} {i}",
                "city": "Lyon",
                "lat": LYON[0] + rng.uniform(-0.08, 0.08),
                "lng": LYON[1] + rng.uniform(-0.11, 0.11),
                "phone": f"+33 4 {rng.randrange(10**8):08d}",
                "email": f"shop{i}@example.fr",
                "website": f"https://shop{i}.example.fr" if i % 2 else None,
                "status": "prospect",
            }
            accounts.append(fields)
            mutations.append({"mid": i + 1, "table": "accounts", "id": str(uuid.uuid4()),
                              "op": "upsert", "fields": fields, "base_seq": None,
                              "hlc": [hlc_ms, i]})  # fmt: skip
        response = httpx.post(
            f"{url}/api/sync/v1",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "protocol": 1,
                "client_id": client_id,
                "cursor": None,
                "pull_limit": 1,
                "mutations": mutations,
            },  # fmt: skip
            timeout=120,
        )
        response.raise_for_status()
    return accounts


def candidates(accounts: list[dict[str, Any]], runs: int, rng: random.Random) -> list[Any]:
    made = []
    for n in range(runs):
        held = rng.choice(accounts)
        if n % 3 == 0:  # the same shop, typed otherwise, 10 m away
            made.append({"name": held["name"].upper() + " SARL", "lat": held["lat"] + 0.00009,
                         "lng": held["lng"], "status": "prospect"})  # fmt: skip
        elif n % 3 == 1:  # the same phone, written nationally
            national = "0" + held["phone"][4:].replace(" ", "")
            made.append({"name": "Somewhere else", "phone": national, "status": "prospect"})
        else:
            made.append({"name": f"Nouvelle boutique {n}", "lat": LYON[0] + 0.2, "lng": LYON[1],
                         "email": f"new{n}@example.fr", "status": "prospect"})  # fmt: skip
    return made


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f}  max {ordered[-1]:6.1f}"
        f"  (n={len(ordered)})"
    )


async def run(count: int, runs: int) -> None:
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="fieldcrm-bench-") as tmp:
        # Seeding writes far faster than any rep: the write limits (docs/limits.md) out of the way.
        limits = {"FIELDCRM_WRITE_RATE_PER_MIN": str(10**9), "FIELDCRM_WRITE_BURST": str(10**9)}
        server = start_server(Path(tmp), limits)
        try:
            server.add_user(USER)
            started = time.perf_counter()
            accounts = seed(server.url, count, rng)
            print(f"seeded {count} accounts in {time.perf_counter() - started:.1f} s", flush=True)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                context = await browser.new_context(viewport=PHONE)
                context.set_default_timeout(120_000)
                page = await context.new_page()
                await page.goto(f"{server.url}/")
                await page.get_by_test_id("login-username").fill(USER)
                await page.get_by_test_id("login-password").fill(PASSWORD)
                await page.get_by_test_id("login-submit").click()
                await page.locator("body[data-screen=today]").wait_for(state="attached")
                started = time.perf_counter()
                while await page.evaluate(HELD) < count:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                print(f"the phone synced them in {time.perf_counter() - started:.1f} s")
                results = [await page.evaluate(CHECK, c) for c in candidates(accounts, runs, rng)]
                found = sum(1 for r in results if r["found"])
                print(f"the duplicate check against {results[0]['held']} accounts in IndexedDB"
                      f" ({found} of {runs} candidates matched):")  # fmt: skip
                assert all(r["same"] for r in results)
                for part, what in (("read", "reading them (allRows)"),
                                   ("compare", "comparing, keys made on the way"),
                                   ("cold", "both: the check with nothing ready"),
                                   ("warm", "the check on Save, the keys ready")):  # fmt: skip
                    print(f"  {what:38} {summary([r[part] for r in results])}", flush=True)
                taps = []
                for n in range(max(3, runs // 3)):
                    held = accounts[n * 7 % len(accounts)]
                    await page.evaluate("(h) => { location.hash = h; }", "#/account/new")
                    form = page.get_by_test_id("account-form")
                    await form.wait_for()
                    await form.get_by_test_id("field-name").fill(held["name"])
                    await form.get_by_test_id("field-phone").fill(held["phone"])
                    taps.append(await page.evaluate(TAP_TO_WARNING))
                print(f"  tap on Save to the warning shown: {summary(taps)}", flush=True)
                await browser.close()
        finally:
            server.process.terminate()
            server.process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.accounts, args.runs))


if __name__ == "__main__":
    main()
