"""What the write limits (docs/limits.md) cost a write batch, on SQLite and PostgreSQL.

    .venv/bin/python bench/limits.py [--engines sqlite,postgres] [--rounds 40]

In this process, on a database filled as bench/sync.py fills it (4 teams of 10 reps, 5,000
rows each): the reconnect wave, 16 phones of one team each with 20 queued writes (account
edits and new notes), applied as the server's Batcher gives them, in one `round_trips`
call; and one REST write through the one writer. Rounds alternate the limits on (the
defaults' checks, with bounds no round reaches) and off (`0`), so both see the same machine
load: on a shared machine an HTTP bench's latencies swing by more than what is measured
here. Prints the median and p90 time of a batch each way, and, more telling on a busy
machine, the time spent in the limits' own code (`limits.admit`, and writing the budgets
and the counts) per batch and per REST write. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from bench.support import database, settle_after_bulk_load  # noqa: E402
from bench.sync import fill  # noqa: E402
from server.core import limits, usage  # noqa: E402
from server.core.store import STORE  # noqa: E402
from server.core.writer import Edit, Source, writing  # noqa: E402
from sync.engine import Exchange, round_trips  # noqa: E402
from sync.protocol import SyncRequest  # noqa: E402

PHONES = 16
WRITES = 20
ON = limits.Limits(write_rate_per_min=10**9, write_burst=10**9, team_quota_records=10**9)
OFF = limits.Limits(write_rate_per_min=0, write_burst=0, team_quota_records=0)


class Phone:
    def __init__(self, actor: object) -> None:
        self.actor = actor
        self.client_id = str(uuid.uuid4())
        self.next_mid = 1


def wave(phones: list[Phone], accounts: list[str], rng: random.Random) -> list[Exchange]:
    now = int(time.time() * 1000)
    exchanges = []
    for phone in phones:
        mutations = []
        for n in range(WRITES):
            account = rng.choice(accounts)
            if n % 2:
                note = {"account_id": account, "body": f"Note {n}"}
                table, record, fields = "notes", str(uuid.uuid4()), note
            else:
                table, record, fields = "accounts", account, {"city": rng.choice(["Lyon", "Metz"])}
            mutations.append(
                {
                    "mid": phone.next_mid,
                    "table": table,
                    "id": record,
                    "op": "upsert",
                    "fields": fields,
                    "base_seq": None,
                    "hlc": [now, n],
                }  # fmt: skip
            )
            phone.next_mid += 1
        body = {"protocol": 1, "client_id": phone.client_id, "cursor": None, "pull_limit": 1,
                "mutations": mutations}  # fmt: skip
        request = msgspec.json.decode(msgspec.json.encode(body), type=SyncRequest)
        exchanges.append(Exchange(phone.actor, request, now))
    return exchanges


def set_limits(value: limits.Limits) -> None:
    limits._current[0] = value


SPENT = [0.0]  # seconds in the limits' own code


def timed(function: Any) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            SPENT[0] += time.perf_counter() - started

    return wrapper


limits.admit = timed(limits.admit)  # type: ignore[method-assign]
usage.WriteBudgets.write = timed(usage.WriteBudgets.write)  # type: ignore[method-assign]
usage.ScopeUsage.write = timed(usage.ScopeUsage.write)  # type: ignore[method-assign]


async def run(engine: str, rounds: int) -> None:
    async with database(engine):
        filled = await fill(4, 5000, random.Random(7))
        await settle_after_bulk_load()
        reps = [actor for actor, _ in filled["reps"]]
        accounts = list(filled["accounts"])
        phones = [Phone(reps[k % len(reps)]) for k in range(PHONES)]
        rng = random.Random(3)
        times: dict[str, list[float]] = {"on": [], "off": []}
        rest: dict[str, list[float]] = {"on": [], "off": []}
        own: dict[str, list[float]] = {"batch": [], "rest": []}
        for round_ in range(2 * rounds + 2):
            name = "on" if round_ % 2 else "off"
            set_limits(ON if name == "on" else OFF)
            exchanges = wave(phones, accounts, rng)
            SPENT[0] = 0.0
            started = time.perf_counter()
            await round_trips(STORE, exchanges)
            batch_ms = 1000 * (time.perf_counter() - started)
            batch_own, SPENT[0] = SPENT[0], 0.0
            started = time.perf_counter()
            async with writing(Source.REST) as writer:
                note = {"account_id": accounts[0], "body": "x"}
                await writer.apply(reps[0], Edit("notes", str(uuid.uuid4()), note))
            rest_ms = 1000 * (time.perf_counter() - started)
            if round_ >= 2:  # the first of each is a warm-up
                times[name].append(batch_ms)
                rest[name].append(rest_ms)
                if name == "on":
                    own["batch"].append(1000 * batch_own)
                    own["rest"].append(1000 * SPENT[0])
        set_limits(limits.Limits())
    for label, series in (("reconnect batch", times), ("REST write", rest)):
        on, off = sorted(series["on"]), sorted(series["off"])
        p50_on, p50_off = statistics.median(on), statistics.median(off)
        print(
            f"{engine:8} {label} ({PHONES} x {WRITES} writes)" if label.startswith("re")
            else f"{engine:8} {label}",
            f"limits off p50 {p50_off:.2f} ms p90 {off[int(0.9 * len(off))]:.2f} ms;"
            f" on p50 {p50_on:.2f} ms p90 {on[int(0.9 * len(on))]:.2f} ms;"
            f" difference of the medians {p50_on - p50_off:+.2f} ms"
            f" ({100 * (p50_on - p50_off) / p50_off:+.1f}%)",
            flush=True,
        )  # fmt: skip

    print(
        f"{engine:8} in the limits' own code: p50 {statistics.median(own['batch']):.2f} ms"
        f" a batch ({1000 * statistics.median(own['batch']) / (PHONES * WRITES):.1f} us a"
        f" write), p50 {statistics.median(own['rest']):.2f} ms a REST write",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    for engine in args.engines.split(","):
        await run(engine, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
