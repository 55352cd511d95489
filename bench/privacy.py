"""What an export and an erasure (SPEC section 12) cost, on SQLite and PostgreSQL.

    .venv/bin/python bench/privacy.py [--engines sqlite,postgres] [--rows 20000] [--teams 4]
                                      [--erasures 3]

For each engine: a database made for the run, filled like bench/sync.py's (--teams teams
of --rows rows: accounts with their contacts, visits, notes, tasks and deals), plus one
history entry per record (as a create leaves). Then, in this process: the export of an
account (the JSON document), and --erasures erasures of accounts, each timed whole and in
its two parts: the write transaction (rows, history, the change log, the import log...,
and on SQLite the full-text indexes merged) and the reclaim after it (SQLite: a checkpoint
that empties the log; PostgreSQL: the touched tables rewritten, which locks each while it
runs). Meanwhile a writer edits another account over and over, through the one writer, as
a phone's sync would: the slowest of those writes says how long the erasure held writes up.
Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database  # noqa: E402
from bench.sync import add_user, fill, insert  # noqa: E402
from server import db  # noqa: E402
from server.core import erasure  # noqa: E402
from server.core.actor import Actor  # noqa: E402
from server.core.fields import CHILD_TABLES  # noqa: E402
from server.core.history import entry_hash  # noqa: E402
from server.core.writer import Edit, Source, writing  # noqa: E402
from server.privacy.services import export  # noqa: E402


async def add_history() -> int:
    """One `create` entry per record, hash-chained as the session makes them."""
    rows: list[list[Any]] = []
    for table in ("accounts", *CHILD_TABLES):
        for row in await db.fetch(f"SELECT id, seq, created_at FROM {table}"):
            fields = '{"name":{"new":"x","old":null}}'
            digest = entry_hash(
                "", int(row["seq"]), table, str(row["id"]), row["created_at"], None, "server",
                "system", "create", fields,
            )  # fmt: skip
            rows.append(
                [int(row["seq"]), table, str(row["id"]), row["created_at"], None, "server",
                 "system", "create", fields, "", digest]
            )  # fmt: skip
    columns = ["seq", "record_table", "record_id", "at", "user_id", "client_id", "source", "op",
               "fields", "prev_hash", "hash"]  # fmt: skip
    await insert("history", columns, rows)
    return len(rows)


async def bench(engine: str, args: argparse.Namespace) -> None:
    async with database(engine):
        rng = random.Random(7)
        world = await fill(args.teams, args.rows, rng)
        entries = await add_history()
        team = (await db.fetch("SELECT team_id FROM users LIMIT 1"))[0]["team_id"]
        admin, _ = await add_user(str(team), "admin")
        if db.is_postgres():
            await db.fetch("VACUUM ANALYZE")
        print(f"\n{engine}: {world['rows']} rows, {entries} history entries")
        started = time.perf_counter()
        document, _ = await export(admin, "accounts", world["accounts"][0])
        print(f"  export of an account: {(time.perf_counter() - started) * 1000:.0f} ms,"
              f" {len(document)} bytes")  # fmt: skip
        wholes, writes, reclaims = [], [], []
        original = erasure.reclaim
        spent: dict[str, float] = {}

        async def timed_reclaim(erasure_id: str) -> bool:
            begun = time.perf_counter()
            try:
                return await original(erasure_id)
            finally:
                spent["reclaim"] = time.perf_counter() - begun

        erasure.reclaim = timed_reclaim  # type: ignore[assignment]
        held_up: list[float] = []
        for account_id in world["accounts"][1 : 1 + args.erasures]:
            stop = asyncio.Event()
            writes_during = asyncio.create_task(keep_writing(admin, world["accounts"][-1], stop))
            begun = time.perf_counter()
            erased = await erasure.erase(admin, "accounts", account_id)
            whole = time.perf_counter() - begun
            stop.set()
            held_up.append(max(await writes_during))
            assert erased.reclaimed
            wholes.append(whole * 1000)
            reclaims.append(spent["reclaim"] * 1000)
            writes.append((whole - spent["reclaim"]) * 1000)
        erasure.reclaim = original  # type: ignore[assignment]
        whole, write, reclaim = (statistics.median(v) for v in (wholes, writes, reclaims))
        print(
            f"  erasure of an account ({erased.records} rows each), median of {len(wholes)}:"
            f" {whole:.0f} ms = transaction {write:.0f} ms + reclaim {reclaim:.0f} ms"
        )
        print(
            "  the slowest write to another account during an erasure:"
            f" {statistics.median(held_up):.0f} ms (median of {len(held_up)}),"
            f" {max(held_up):.0f} ms at most"
        )


async def keep_writing(actor: Actor, account_id: str, stop: asyncio.Event) -> list[float]:
    """Edit the account again and again until `stop`, each in its own write transaction
    of the one writer; how long each took (ms)."""
    spent: list[float] = [0.0]
    count = 0
    while not stop.is_set():
        count += 1
        begun = time.perf_counter()
        async with writing(Source.REST) as writer:
            await writer.apply(actor, Edit("accounts", account_id, {"name": f"Renamed {count}"}))
        spent.append((time.perf_counter() - begun) * 1000)
        await asyncio.sleep(0.02)
    return spent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--rows", type=int, default=20000, help="rows per team")
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--erasures", type=int, default=3)
    args = parser.parse_args()
    for engine in args.engines.split(","):
        await bench(engine, args)


if __name__ == "__main__":
    asyncio.run(main())
