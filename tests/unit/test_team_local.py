"""The phone's team report (pwa/js/team-local.js) against the server's rules, run in node:
amounts rounded to the cent as Python rounds them, and instants counted on the calendar
day of the org's time zone (docs/reports.md). The whole report against the server's is
e2e/test_team_offline.py."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

JS = Path(__file__).resolve().parents[2] / "pwa" / "js" / "team-local.js"
NODE = shutil.which("node")

SCRIPT = """
import { readFileSync } from "node:fs";
import { cents, computeReport } from "%(module)s";
const input = JSON.parse(readFileSync(0, "utf8"));
const visits = input.instants.map((iso, n) => ({ id: `v${n}`, account_id: "a", user_id: "u",
  started_at: iso, verification: n %% 2 ? "verified" : "unverified" }));
const report = computeReport({ accounts: [{ id: "a", name: "A", team_id: "t" }], visits,
  notes: [], tasks: [], deals: [] }, { team: "t", from: input.from, to: input.to,
  zone: input.zone, days: 30, now: Date.now(), members: [{ id: "u", username: "u" }],
  devices: null });
console.log(JSON.stringify({ cents: input.amounts.map(cents),
  days: Object.fromEntries(report.days.map((d) => [d.date, d.visits])) }));
process.exit(0);
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Pacific/Auckland"])
def test_cents_and_days_are_the_servers(zone: str) -> None:
    rng = random.Random(zone)
    amounts = [0.125, 0.375, 2.675, 1.005, -0.125, 1234.565, 99.995, 0.1 + 0.2]
    amounts += [round(rng.uniform(0, 100000), rng.choice([1, 2, 3, 4])) for _ in range(300)]
    amounts += [n / 8 for n in range(-40, 400)]
    tz = ZoneInfo(zone)
    start, end = date(2026, 3, 25), date(2026, 4, 3)  # daylight saving changes, both sides
    instants = []
    for day in range(-2, 12):
        midnight = datetime.combine(start + timedelta(days=day), datetime.min.time(), tzinfo=tz)
        for delta in (timedelta(0), timedelta(microseconds=-1), timedelta(minutes=30)):
            instants.append((midnight + delta).astimezone(UTC))
        instants.append(midnight + timedelta(hours=rng.uniform(0, 24)))
    data = {
        "zone": zone,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "amounts": amounts,
        "instants": [i.isoformat() for i in instants],
    }
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", SCRIPT % {"module": JS.as_uri()}],
        input=json.dumps(data).encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    got = json.loads(result.stdout)
    assert got["cents"] == [round(a, 2) for a in amounts]
    want = {(start + timedelta(days=n)).isoformat(): 0 for n in range((end - start).days + 1)}
    for instant in instants:
        day = instant.astimezone(tz).date().isoformat()
        if day in want:
            want[day] += 1
    assert got["days"] == want
