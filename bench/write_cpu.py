"""The CPU a sync write batch costs, in process, on SQLite and PostgreSQL.

    .venv/bin/python bench/write_cpu.py [--engines sqlite,postgres] [--waves 40]
                                        [--batches 12] [--profile DIR]

bench/sync.py's latencies swing with the load other work puts on the machine; CPU time
swings far less. This bench fills a database as bench/sync.py does (4 teams of 5,000 rows)
and plays its two write scenarios in this process, through what the server runs for them
(the request decoded and cleaned, `round_trips` as the Batcher calls it, the answers
encoded and compressed), without HTTP:

  reconnect  16 phones of one team, 20 queued writes each (bench/sync.py's mix: account
             edits and new notes), with the device report the app sends: one batch.
  ingest     4 phones x 500 writes (new notes and contacts, account phone edits), pull
             limit 1: one batch of 2,000 mutations.

For each it prints the median and quartiles of this process's CPU time (time.process_time)
per request or per mutation over the rounds and, on PostgreSQL, the mean CPU of the
server's backends (from /proc: the same machine; in ticks of 10 ms, so only the mean over
every round means anything). With --profile DIR, cProfile records every wave, written
to DIR/<engine>-<scenario>.prof, and the busiest functions are printed. Asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import os
import pstats
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
from bench.sync import ACCEPT_ENCODING, fill, queue_edits  # noqa: E402
from server import db  # noqa: E402
from server.core.store import STORE  # noqa: E402
from server.syncing import services  # noqa: E402
from server.syncing.controllers import decode_request, encode_response  # noqa: E402
from sync.engine import Exchange, round_trips  # noqa: E402
from sync.protocol import SyncResponse  # noqa: E402

DEVICE = {"pending": 0, "oldest_pending_at": None, "app_version": "905e0811ad87",
          "platform": "Android"}  # fmt: skip
_json = msgspec.json.Encoder()
_ticks = os.sysconf("SC_CLK_TCK")


class Phone:
    """bench/sync.py's phone, without HTTP: a client id, mids, a cursor, an outbox."""

    def __init__(self, actor: Any, cursor: str | None, seqs: dict[str, int]) -> None:
        self.actor = actor
        self.client_id = str(uuid.uuid4())
        self.cursor = cursor
        self.next_mid = 1
        self.outbox: list[dict[str, Any]] = []
        self.seqs = dict(seqs)

    def write(self, table: str, record_id: str, fields: dict[str, Any]) -> None:
        self.outbox.append(
            {
                "mid": self.next_mid,
                "table": table,
                "id": record_id,
                "op": "upsert",
                "fields": fields,
                "base_seq": self.seqs.get(record_id),
                "hlc": [int(time.time() * 1000), 0],
            }  # fmt: skip
        )
        self.next_mid += 1

    def body(self, pull_limit: int) -> bytes:
        return _json.encode(
            {
                "protocol": 1,
                "client_id": self.client_id,
                "cursor": self.cursor,
                "pull_limit": pull_limit,
                "mutations": self.outbox,
                "device": DEVICE,
            }  # fmt: skip
        )

    def answered(self, response: SyncResponse) -> None:
        last = response.ack.last_mid
        self.outbox = [m for m in self.outbox if m["mid"] > last]
        self.cursor = response.cursor
        for change in response.changes:
            if change.op == "put":
                self.seqs[change.id] = change.seq


async def backend_cpu() -> float:
    """CPU seconds of this database's PostgreSQL backends so far (0 on SQLite)."""
    if not db.is_postgres():
        return 0.0
    rows = await db.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    return sum(process_cpu(int(row["pid"])) for row in rows)


def process_cpu(pid: int) -> float:
    """A process's CPU seconds so far, from /proc (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _ticks


async def serve(phones: list[Phone], pull_limit: int) -> list[SyncResponse]:
    """What the server does for these phones' requests arriving together."""
    exchanges = []
    now = int(time.time() * 1000)
    for phone in phones:
        request = decode_request(phone.body(pull_limit), "application/json")
        exchanges.append(Exchange(phone.actor, services.for_engine(request, phone.actor), now))
    answers = await round_trips(STORE, exchanges)
    done = []
    for phone, answer in zip(phones, answers, strict=True):
        assert isinstance(answer, SyncResponse), answer
        encoded = encode_response(answer, "application/json", ACCEPT_ENCODING)
        if inspect.isawaitable(encoded):  # (an older server's was not a coroutine)
            await encoded
        phone.answered(answer)
        done.append(answer)
    return done


def ingest_writes(phone: Phone, rng: random.Random, ids: list[str]) -> None:
    for n in range(500):  # bench/sync.py's ingest
        account = rng.choice(ids)
        if n % 2:
            phone.write("notes", str(uuid.uuid4()), {"account_id": account, "body": f"Note {n}"})
        elif n % 4 == 0:
            fields = {"account_id": account, "name": f"Buyer {n}"}
            phone.write("contacts", str(uuid.uuid4()), fields)
        else:
            phone.write("accounts", account, {"phone": f"+33 {rng.randint(1, 9)}"})


async def scenario(
    name: str, engine: str, rounds: int, profile: Path | None, play: Any, per: int
) -> None:
    cpu: list[float] = []
    backend: list[float] = []
    wall: list[float] = []
    profiler = cProfile.Profile() if profile else None
    for round_ in range(rounds + 2):
        prepare, run = play()
        prepare()
        pg = await backend_cpu()
        started, wall_started = time.process_time(), time.perf_counter()
        if profiler and round_ >= 2:
            profiler.enable()
        await run()
        if profiler:
            profiler.disable()
        took, took_wall = time.process_time() - started, time.perf_counter() - wall_started
        pg = await backend_cpu() - pg
        if round_ >= 2:  # the first two warm the caches and the connections
            cpu.append(1000 * took / per)
            backend.append(1000 * pg / per)
            wall.append(1000 * took_wall)
    unit = "request" if name == "reconnect" else "mutation"

    def spread(values: list[float]) -> str:
        q = statistics.quantiles(values, n=4)
        return f"{statistics.median(values):.3f} ({q[0]:.3f}-{q[2]:.3f})"

    line = f"{engine:8} {name:9} CPU ms per {unit}: this process {spread(cpu)}"
    if engine == "postgres":  # /proc counts in ticks (10 ms): the mean over every round
        line += f"; PostgreSQL backends {statistics.mean(backend):.3f}"
    print(f"{line}; batch wall p50 {statistics.median(wall):.0f} ms", flush=True)
    if profiler and profile:
        path = profile / f"{engine}-{name}.prof"
        profiler.dump_stats(path)
        stats = pstats.Stats(str(path))
        stats.sort_stats("tottime").print_stats(25)


async def run(engine: str, args: argparse.Namespace) -> None:
    try:  # bench/sync.py's server counts the limits with bounds no scenario reaches
        from server.core import limits

        limits._current[0] = limits.Limits(write_rate_per_min=10**9, write_burst=10**9)
    except ImportError:  # an older server, for comparison
        pass
    async with database(engine):
        filled = await fill(4, 5000, random.Random(7))
        await settle_after_bulk_load()
        reps = [actor for actor, _ in filled["reps"]]
        seqs: dict[str, int] = filled["seqs"]
        # Every phone up to date, as bench/sync.py's come back from idle.
        first = Phone(reps[0], None, seqs)
        while (await serve([first], 2000))[0].has_more:
            pass
        cursor = first.cursor
        gc.collect()
        gc.freeze()  # and the collector's threshold, as `fieldcrm serve` sets them
        from server import cli

        new_objects = getattr(cli, "GC_NEW_OBJECTS", None)  # (an older server had none)
        if new_objects:
            gc.set_threshold(new_objects, *gc.get_threshold()[1:])

        rng = random.Random(3)
        phones = [Phone(reps[k % len(reps)], cursor, seqs) for k in range(16)]

        def reconnect() -> Any:
            def prepare() -> None:
                for phone in phones:
                    queue_edits(phone, rng, list(seqs), 20)  # type: ignore[arg-type]

            return prepare, lambda: serve(phones, 500)

        await scenario("reconnect", engine, args.waves, args.profile, reconnect, 16)

        feeders = [Phone(reps[k % len(reps)], cursor, seqs) for k in range(4)]
        ids = list(seqs)

        def ingest() -> Any:
            def prepare() -> None:
                for phone in feeders:
                    ingest_writes(phone, rng, ids)

            return prepare, lambda: serve(feeders, 1)

        await scenario("ingest", engine, args.batches, args.profile, ingest, 2000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--waves", type=int, default=40)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output directory")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    for engine in args.engines.split(","):
        await run(engine.strip(), args)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
