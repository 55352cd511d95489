"""Campaigns (docs/campaigns.md) at their largest, on SQLite and PostgreSQL.

    .venv/bin/python bench/campaigns.py [--engines sqlite,postgres] [--accounts 2000]
                                        [--visits 20000] [--runs 5]

For each engine: a database made for the run (bench/support.py), one team of 20 reps and
a manager, --accounts accounts spread over a box around Lyon (all inside the campaign's
area) and --visits visits on them over the last 60 days, loaded in bulk. Then, in this
process, as a request calls them: a dry run of a campaign over the whole box (choosing and
scheduling every account), --runs times; one campaign written (a planned visit per
account through the one writer, in batches of 250); its progress read (GET
/api/campaigns/{id}'s service) and the team's list, --runs times. Milliseconds, p50 and
max. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reports import Loader, row_base  # noqa: E402
from bench.support import database, settle_after_bulk_load  # noqa: E402
from server import db  # noqa: E402
from server.campaigns import services  # noqa: E402
from server.campaigns.schemas import Area, CampaignRequest  # noqa: E402
from server.core.actor import Actor, team_scope  # noqa: E402

REPS = 20
BOX = [(45.70, 4.75), (45.80, 4.90)]
TZ = "Europe/Paris"


async def load(rng: random.Random, accounts: int, visits: int) -> Actor:
    now = datetime.now(UTC)
    team_id = str(uuid.uuid4())
    scope = team_scope(team_id)
    await db.fetch(
        "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})", team_id, "t", now
    )
    users = []
    for n in range(REPS + 1):
        user_id = str(uuid.uuid4())
        users.append(user_id)
        await db.fetch(
            "INSERT INTO users (id, username, password_hash, role, team_id, active, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {})",
            user_id,
            f"user{n:02d}",
            "-",
            "manager" if n == REPS else "rep",
            team_id,
            True,
            now,
        )
    loader = Loader()
    ids = []
    for n in range(accounts):
        row = row_base(scope, loader.next_seq(), now - timedelta(days=400))
        owner = users[n % REPS]
        row.update(
            name=f"Shop {n}", status="prospect", owner_id=owner, team_id=team_id,
            created_by=owner, lat=rng.uniform(BOX[0][0], BOX[1][0]),
            lng=rng.uniform(BOX[0][1], BOX[1][1]), city="Lyon",
        )  # fmt: skip
        ids.append((row["id"], owner))
        await loader.add("accounts", row)
    for _ in range(visits):
        account, owner = rng.choice(ids)
        started = now - timedelta(seconds=rng.randint(0, 60 * 86_400))
        row = row_base(scope, loader.next_seq(), started)
        row.update(account_id=account, started_at=started, user_id=owner, outcome="met",
                   verification=rng.choice(("verified", "unverified")))  # fmt: skip
        await loader.add("visits", row)
    await loader.flush()
    await db.fetch("UPDATE sync_meta SET value = {} WHERE key = {}", str(loader.seq), "seq")
    await settle_after_bulk_load()
    return Actor(user_id=users[REPS], username="user20", role="manager", team_id=team_id)


def figures(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {times[len(times) // 2]:7.1f}  max {times[-1]:7.1f}"


async def run(engine: str, accounts: int, visits: int, runs: int) -> None:
    async with database(engine):
        rng = random.Random(7)
        started = time.perf_counter()
        manager = await load(rng, accounts, visits)
        print(f"{engine}: {accounts:,} accounts, {visits:,} visits loaded in"
              f" {time.perf_counter() - started:.1f} s")  # fmt: skip
        monday = date.today() + timedelta(days=7 - date.today().weekday())
        request = CampaignRequest(
            name="Bench", start=monday.isoformat(), end=(monday + timedelta(days=27)).isoformat(),
            area=Area(type="rectangle", points=[BOX[0], BOX[1]]),
        )  # fmt: skip
        timings: dict[str, list[float]] = {"dry run": [], "write": [], "detail": [], "list": []}

        async def timed(name: str, work: object) -> object:
            t0 = time.perf_counter()
            result = await work  # type: ignore[misc]
            timings[name].append((time.perf_counter() - t0) * 1000)
            return result

        for _ in range(runs):
            checked = await services.check(manager, TZ, request, True)
            await timed("dry run", services.plan(manager, TZ, checked, True))
        checked = await services.check(manager, TZ, request, False)
        plan = await timed("write", services.plan(manager, TZ, checked, False))
        campaign_id = plan.campaign.id  # type: ignore[attr-defined]
        for _ in range(runs):
            await timed("detail", services.campaign_detail(manager, TZ, campaign_id))
            await timed("list", services.list_campaigns(manager, TZ, None))
        print(f"  planned visits written: {plan.created:,}")  # type: ignore[attr-defined]
        for name, times in timings.items():
            print(f"  {name:<8} {figures(times)} ms  ({len(times)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--visits", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for engine in args.engines.split(","):
        asyncio.run(run(engine, args.accounts, args.visits, args.runs))


if __name__ == "__main__":
    main()
