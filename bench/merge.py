"""Merge and undo: an account with many records hanging off it merged into another, and
the merge undone, on each engine, with a small write every 50 ms meanwhile (what a syncing
phone waits for: a merge moves records in batches of about 25 ms, each a write transaction
of its own, so the phone's write should wait at most about one batch). "idle" is the same
writes for 3 s with nothing else running: on a shared machine, the noise to judge by.

    .venv/bin/python bench/merge.py [--children 1000,5000,20000] [--engines sqlite,postgres]

A database made for the run (bench/support.py). The merged account's children: visits,
notes, tasks, contacts and deals in equal parts. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import database  # noqa: E402
from server.auth.services import actor_for_user, create_user  # noqa: E402
from server.core.actor import SYSTEM  # noqa: E402
from server.core.writer import Edit, Source, writing  # noqa: E402
from server.merging.schemas import MergeRequest  # noqa: E402
from server.merging.services import merge, undo  # noqa: E402

CHILD = {
    "visits": {"outcome": "met"},
    "notes": {"body": "A note"},
    "tasks": {"title": "Call back"},
    "contacts": {"name": "Ann"},
    "deals": {"title": "Order"},
}

START = datetime(2000, 1, 1, 9, tzinfo=UTC)


def child(table: str, account_id: str, n: int) -> dict[str, object]:
    """A record of `table` on the account; visits at one a day, in random order."""
    fields: dict[str, object] = {"account_id": account_id, **CHILD[table]}
    if table == "visits":
        fields["started_at"] = (START + timedelta(days=(n * 7919) % 10_000)).isoformat()
    return fields


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def phone_like_writes(stop: asyncio.Event, account_id: str, waits: list[float]) -> None:
    """A tiny write every 50 ms, as a syncing phone's: how long it waits and runs."""
    n = 0
    while not stop.is_set():
        started = time.perf_counter()
        async with writing(Source.REST) as writer:
            await writer.apply(SYSTEM, Edit("accounts", account_id, {"city": f"Lyon {n}"}))
        waits.append((time.perf_counter() - started) * 1000)
        n += 1
        await asyncio.sleep(0.05)


async def run(engine: str, sizes: list[int]) -> None:
    async with database(engine):
        user_id, _ = await create_user("boss", "bench-password-1", "manager", "north")
        actor = await actor_for_user(user_id)
        assert actor is not None
        probe_id = str(uuid.uuid4())
        async with writing(Source.REST) as writer:
            await writer.apply(actor, Edit("accounts", probe_id, {"name": "Probe"}))
        for size in sizes:
            keep, dup = str(uuid.uuid4()), str(uuid.uuid4())
            async with writing(Source.DEMO) as writer:  # not limited, unlike a person's
                await writer.apply(actor, Edit("accounts", keep, {"name": "Laurent"}))
                await writer.apply(actor, Edit("accounts", dup, {"name": "Laurent SARL"}))
            tables = list(CHILD)
            for start in range(0, size, 500):
                async with writing(Source.DEMO) as writer:
                    await writer.apply_all(actor, [
                        Edit(tables[n % 5], str(uuid.uuid4()), child(tables[n % 5], dup, n))
                        for n in range(start, min(size, start + 500))
                    ])  # fmt: skip
            request = MergeRequest(table="accounts", survivor_id=keep, merged_ids=[dup],
                                   fields={"name": dup})  # fmt: skip
            for what in ("idle", "merge", "undo"):
                waits: list[float] = []
                stop = asyncio.Event()
                phone = asyncio.create_task(phone_like_writes(stop, probe_id, waits))
                await asyncio.sleep(0.2)
                started = time.perf_counter()
                if what == "idle":  # the machine's noise: the same writes, nothing else
                    await asyncio.sleep(3)
                elif what == "merge":
                    merge_id = (await merge(actor, request)).merge_id
                else:
                    await undo(actor, merge_id)
                elapsed = time.perf_counter() - started
                await asyncio.sleep(0.2)
                stop.set()
                await phone
                print(
                    f"{engine:8} {what:5} of an account with {size:>6} records: {elapsed:6.2f} s;"
                    f" a phone's write meanwhile: p50 {statistics.median(waits):.1f} ms,"
                    f" p99 {p99(waits):.1f} ms, max {max(waits):.1f} ms ({len(waits)} writes)",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", default="1000,5000,20000")
    parser.add_argument("--engines", default="sqlite,postgres")
    args = parser.parse_args()
    sizes = [int(n) for n in args.children.split(",")]
    for engine in args.engines.split(","):
        asyncio.run(run(engine, sizes))


if __name__ == "__main__":
    main()
