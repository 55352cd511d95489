"""The app's clock in real Chromium (SPEC 4 rule 3, v1.1): both copies, js/hlc.js and the
one in sw.js, carry a counter at its bound into the next millisecond, and js/hlc.js
ignores a clock outside the bounds instead of adopting it."""

from __future__ import annotations

import re
from pathlib import Path

from e2e.conftest import Server

SW = Path(__file__).resolve().parent.parent / "pwa" / "sw.js"
BOUND = 2**31 - 1
NOW = 1_765_000_000_000


async def test_both_copies_of_the_clock_carry_at_the_bound(server: Server, phones) -> None:
    app = await phones.open(server.url)
    await app.open()
    page = app.page
    module = await page.evaluate(
        """async ([bound, now]) => {
            const hlc = await import("/js/hlc.js");
            return {
                carried: hlc.tick([now, bound], now - 5),
                bumped: hlc.tick([now, 7], now),
                moved: hlc.tick([now, bound], now + 1),
                adopted: hlc.observe([now, 0], [now, bound]),
                refused: hlc.observe([now, 0], [now, bound + 1]),
                refusedMs: hlc.observe([now, 0], [2 ** 53, 0]),
            };
        }""",
        [BOUND, NOW],
    )
    assert module["carried"] == [NOW + 1, 0]
    assert module["bumped"] == [NOW, 8]
    assert module["moved"] == [NOW + 1, 0]
    assert module["adopted"] == [NOW, BOUND]
    assert module["refused"] == [NOW, 0]
    assert module["refusedMs"] == [NOW, 0]

    match = re.search(r"^function tick\(last, now\) \{.*?^\}", SW.read_text(), re.S | re.M)
    assert match, "sw.js has no tick(last, now)"
    worker = await page.evaluate(
        f"""([bound, now]) => {{
            {match.group(0)}
            return {{carried: tick([now, bound], now - 5), bumped: tick([now, 7], now)}};
        }}""",
        [BOUND, NOW],
    )
    assert worker == {"carried": [NOW + 1, 0], "bumped": [NOW, 8]}
