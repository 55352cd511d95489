"""Ordering a day's stops (SPEC section 14): geo/route.py on the server and pwa/js/route.js
in Chromium, at 10, 30 and 50 stops, the phone also with its CPU slowed 4x (a cheap phone).

    .venv/bin/python bench/route.py [--runs 7]

Stops spread over a city's 30 x 30 km; the start in its middle. For each size: the median
time (ms) of the server's plan_route (geodesics, then Held-Karp or the local search) and of
the phone's planRoute, the first call apart (the phone's JIT is cold then), and how the
phone's length compares with the server's. Prints figures; asserts nothing. Target: under
50 ms on the phone at 50 stops (issue 17).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from geo.route import plan_route  # noqa: E402

START = (45.764, 4.8357)
SIZES = (10, 30, 50)
PHONE = """async ([start, stops, runs]) => {
    const { planRoute } = await import("/js/route.js");
    const s = { lat: start[0], lng: start[1] };
    const points = stops.map(([lat, lng]) => ({ lat, lng }));
    const times = [];
    let length = 0;
    for (let i = 0; i < runs + 1; i++) {
        const t = performance.now();
        length = planRoute(s, points).distanceM;
        times.push(performance.now() - t);
    }
    return { times, length };
}"""


def stops(count: int) -> list[tuple[float, float]]:
    rng = random.Random(count)
    return [(45.63 + rng.random() * 0.27, 4.64 + rng.random() * 0.39) for _ in range(count)]


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


async def run(runs: int) -> None:
    server_rows = {}
    for size in SIZES:
        points = stops(size)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            planned = plan_route(START, points)
            times.append((time.perf_counter() - started) * 1000)
        server_rows[size] = (times, planned.distance_m)

    tmp = Path(tempfile.mkdtemp(prefix="fieldcrm-bench-route-"))
    server = start_server(tmp)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            page = await browser.new_page(viewport={"width": 360, "height": 740})
            await page.goto(f"{server.url}/")
            cdp = await page.context.new_cdp_session(page)
            print("size  server ms  phone ms (first)  phone 4x ms (first)  phone/server length")
            for size in SIZES:
                points = stops(size)
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
                fast = await page.evaluate(PHONE, [START, points, runs])
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
                slow = await page.evaluate(PHONE, [START, points, runs])
                server_times, server_length = server_rows[size]
                print(
                    f"{size:4d}  {median(server_times):>9}"
                    f"  {median(fast['times'][1:]):>8} ({fast['times'][0]:.1f})"
                    f"  {median(slow['times'][1:]):>11} ({slow['times'][0]:.1f})"
                    f"  {fast['length'] / server_length:.4f}"
                )
            await browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(run(parser.parse_args().runs))


if __name__ == "__main__":
    main()
