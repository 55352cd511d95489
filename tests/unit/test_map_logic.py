"""The map's pure logic in the PWA, run in node (as tests/unit/test_pwa_static.py does for
the clock): an account's colour by status or by its last visit, and the legs of a day's
stops in an order the rep chose by hand (pwa/js/map-layers.js, pwa/js/route.js)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from geographiclib.geodesic import Geodesic

JS = (Path(__file__).resolve().parents[2] / "pwa" / "js").as_uri()
NODE = shutil.which("node")

CHECKS = """
import assert from "node:assert/strict";
import { colourOf, COLOUR_MODES } from "%(js)s/map-layers.js";
import { legsOf, planRoute } from "%(js)s/route.js";
const day = 86_400_000;
const now = Date.UTC(2026, 11, 6, 12);
// By status; an unknown status is drawn as a prospect.
assert.equal(colourOf({ status: "customer" }, "status"), "customer");
assert.equal(colourOf({ status: "inactive" }, "status", now - day, now), "inactive");
assert.equal(colourOf({ status: "odd" }, "status"), "prospect");
// By last visit: within N days, not in N days, never.
assert.equal(colourOf({}, "30", null, now), "never");
assert.equal(colourOf({}, "30", now - 29 * day, now), "recent");
assert.equal(colourOf({}, "30", now - 30 * day, now), "due");
assert.equal(colourOf({}, "60", now - 45 * day, now), "recent");
assert.equal(colourOf({}, "90", now - 91 * day, now), "due");
assert.deepEqual(Object.keys(COLOUR_MODES), ["30", "60", "90", "status"]);
// The legs of the stops in an order given: what planRoute measures for its own order.
const start = { lat: 45.764, lng: 4.8357 };
const stops = [[45.79, 4.85], [45.74, 4.80], [45.77, 4.90], [45.75, 4.86]]
  .map(([lat, lng]) => ({ lat, lng }));
const planned = planRoute(start, stops);
assert.deepEqual(legsOf(start, stops, planned.order), planned.legsM);
console.log(JSON.stringify(legsOf(start, stops, [3, 0, 2, 1])));
process.exit(0);
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_colours_and_legs_of_an_order_chosen_by_hand() -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", CHECKS % {"js": JS}],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    legs = [float(v) for v in result.stdout.decode().strip().strip("[]").split(",")]
    points = [(45.764, 4.8357), (45.75, 4.86), (45.79, 4.85), (45.77, 4.90), (45.74, 4.80)]
    expected = [
        Geodesic.WGS84.Inverse(*a, *b)["s12"] for a, b in zip(points, points[1:], strict=False)
    ]
    assert legs == pytest.approx(expected, abs=1.0)
