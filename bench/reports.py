"""The team report (`GET /api/reports/team`, SPEC section 7) over many visits, on SQLite
and PostgreSQL.

    .venv/bin/python bench/reports.py [--engines sqlite,postgres] [--visits 100000]
                                      [--days 60] [--teams 4] [--runs 20]

For each engine: a database made for the run (a temporary SQLite file; a PostgreSQL
database on 127.0.0.1:5432, user postgres or FIELDCRM_TEST_PG_*, dropped after), migrated,
and filled in bulk (straight into the tables, as server/core/session.py would leave them):
team 0 with 20 reps, --visits visits over the last --days days (each rep's accounts, a
third of them verified), a note per three visits, a task per five (half done), a deal per
ten (every stage, three currencies), accounts with `last_visit_at` and devices' reports;
--teams - 1 other teams with a quarter as much each, which the report must skip. Then the
report of team 0 runs in this process (the service, as a request calls it, and its JSON
encoding) --runs times per range: the whole --days (every visit in range), the last 7
days, and one day; p50/p95/max in ms. Target (issue 16): p95 under 300 ms at 100,000
visits in the range, and well under a second. Prints; asserts nothing.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from bench.support import database, settle_after_bulk_load  # noqa: E402
from server import db  # noqa: E402
from server.core.actor import team_scope  # noqa: E402
from server.reports.schemas import ReportQuery  # noqa: E402
from server.reports.services import team_report  # noqa: E402

REPS = 20
ACCOUNTS_PER_REP = 250
CHUNK = 5_000  # rows per INSERT
STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP")
_json = msgspec.json.Encoder()


def row_base(scope: str, seq: int, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "created_at": now,
        "updated_at": now,
        "seq": seq,
        "scope": scope,
        "deleted": False,
        "clocks": "{}",
    }


class Loader:
    """Rows straight into the tables, CHUNK at a time, each in a write transaction."""

    def __init__(self) -> None:
        self.seq = 0
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.counts: dict[str, int] = {}

    async def add(self, table: str, row: dict[str, Any]) -> None:
        rows = self.pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= CHUNK:
            await self.flush(table)

    async def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.pending):
            rows = self.pending.pop(name, [])
            if not rows:
                continue
            columns = list(rows[0])
            async with db.write_transaction():
                await db.insert_rows(name, columns, [[r[c] for c in columns] for r in rows])
            self.counts[name] = self.counts.get(name, 0) + len(rows)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


async def add_team(
    loader: Loader, rng: random.Random, index: int, visits: int, days: int, now: datetime
) -> str:
    team_id = str(uuid.uuid4())
    scope = team_scope(team_id)
    await db.fetch(
        "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})",
        team_id,
        f"team-{index:02d}",
        now,
    )
    reps = []
    for n in range(REPS):
        user_id = str(uuid.uuid4())
        reps.append(user_id)
        await db.fetch(
            "INSERT INTO users (id, username, password_hash, role, team_id, active, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {})",
            user_id,
            f"t{index}-rep{n:02d}",
            "-",
            "rep",
            team_id,
            True,
            now,
        )
    async with db.write_transaction():
        for user_id in reps:  # two devices each
            for _ in range(2):
                device = {"pending": rng.randint(0, 12), "app_version": "2026.12.7"}
                await db.fetch(
                    "INSERT INTO sync_clients (user_id, client_id, last_mid, writes,"
                    " last_sync_ms, device) VALUES ({}, {}, {}, {}, {}, {})",
                    user_id,
                    str(uuid.uuid4()),
                    0,
                    0,
                    int(now.timestamp() * 1000) - rng.randint(0, 86_400_000),
                    _json.encode(device).decode(),
                )
    accounts: dict[str, list[str]] = {}
    first = now - timedelta(days=days)
    for rep in reps:
        for n in range(max(1, min(ACCOUNTS_PER_REP, visits // REPS // 2))):
            row = row_base(scope, loader.next_seq(), first - timedelta(days=rng.randint(0, 400)))
            row.update(
                name=f"Shop {rep[:4]} {n}",
                status="prospect",
                owner_id=rep,
                team_id=team_id,
                created_by=rep,
                lat=45.0,
                lng=4.0,
                last_visit_at=None
                if rng.random() < 0.3
                else now - timedelta(days=rng.randint(0, 90)),
            )
            if rng.random() < 0.05:
                row["created_at"] = now - timedelta(days=rng.randint(0, days))
            accounts.setdefault(rep, []).append(row["id"])
            await loader.add("accounts", row)
    span = days * 86_400
    for n in range(visits):
        rep = reps[n % REPS]
        account = rng.choice(accounts[rep])
        started = now - timedelta(seconds=rng.randint(0, span - 1))
        row = row_base(scope, loader.next_seq(), started)
        row.update(
            account_id=account,
            started_at=started,
            user_id=rep,
            verification=rng.choice(("verified", "out_of_range", "unverified")),
            outcome="met",
        )
        await loader.add("visits", row)
        if n % 3 == 0:
            note = row_base(scope, loader.next_seq(), started)
            note.update(account_id=account, body="Wants a quote.", author_id=rep)
            await loader.add("notes", note)
        if n % 5 == 0:
            task = row_base(scope, loader.next_seq(), started)
            done = rng.random() < 0.5
            task.update(
                title="Call back",
                account_id=account,
                assignee_id=rep,
                author_id=rep,
                done=done,
                done_at=started + timedelta(hours=2) if done else None,
            )
            await loader.add("tasks", task)
        if n % 10 == 0:
            deal = row_base(scope, loader.next_seq(), started)
            stage = rng.choice(STAGES)
            deal.update(
                account_id=account,
                title="Spring order",
                stage=stage,
                amount=float(rng.randint(100, 50_000)),
                currency=rng.choice(CURRENCIES),
                owner_id=rep,
                close_date=(started + timedelta(days=14)).date() if rng.random() < 0.5 else None,
                stage_changed_at=started,
            )
            await loader.add("deals", deal)
    return team_id


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


async def time_report(query: ReportQuery, runs: int) -> tuple[list[float], Any]:
    times, report = [], None
    for _ in range(runs):
        started = time.perf_counter()
        report = await team_report(query)
        _json.encode(report)
        times.append((time.perf_counter() - started) * 1000)
    return times, report


async def bench(engine: str, args: argparse.Namespace) -> dict[str, str]:
    summary: dict[str, str] = {}
    rng = random.Random(16)
    async with database(engine):
        started = time.perf_counter()
        now = datetime.now(UTC)
        loader = Loader()
        team = await add_team(loader, rng, 0, args.visits, args.days, now)
        for index in range(1, args.teams):
            await add_team(loader, rng, index, args.visits // 4, args.days, now)
        await loader.flush()
        await settle_after_bulk_load()
        counts = ", ".join(f"{n:,} {t}" for t, n in sorted(loader.counts.items()))
        print(f"{engine}: {counts}; loaded in {time.perf_counter() - started:.0f} s", flush=True)
        today = now.date()
        ranges: list[tuple[str, date]] = [
            (f"{args.days} days", today - timedelta(days=args.days)),
            ("7 days", today - timedelta(days=6)),
            ("1 day", today),
        ]
        for label, first in ranges:
            query = ReportQuery(team_id=team, start=first, end=today, timezone=args.timezone)
            times, report = await time_report(query, args.runs)
            visits = sum(rep.visits for rep in report.reps)
            print(
                f"  {label}: {visits:,} visits in range; report p50 {pct(times, 0.5):.0f} ms,"
                f" p95 {pct(times, 0.95):.0f} ms, max {max(times):.0f} ms"
                f" ({len(report.days)} days, {len(report.not_visited)} not visited)",
                flush=True,
            )
            summary[label] = f"p95 {pct(times, 0.95):.0f} ms ({visits:,} visits)"
    return summary


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--visits", type=int, default=100_000, help="team 0's visits in range")
    parser.add_argument("--days", type=int, default=60, help="the days they spread over")
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20, help="reports timed per range")
    parser.add_argument("--timezone", default="Europe/Paris")
    args = parser.parse_args()
    results = {engine: await bench(engine.strip(), args) for engine in args.engines.split(",")}
    print("\ntarget: p95 < 300 ms with 100,000 visits in the range")
    for engine, summary in results.items():
        print(f"{engine:8} " + "; ".join(f"{k} {v}" for k, v in summary.items()))


if __name__ == "__main__":
    asyncio.run(main())
