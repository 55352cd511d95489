"""Import: a CSV of accounts imported as a manager, dry run then real, on each engine; a
small write every 50 ms meanwhile (what a syncing phone waits for: the writer's lock) with
its latency; then the duplicate finder over what was imported.

    .venv/bin/python bench/import.py [--rows 10000] [--engines sqlite,postgres]

A database made for the run (bench/support.py). Rows: names of a few shapes, French
addresses, phones written nationally, half with a position, 2% repeated (duplicates within
the file), 1% with an error. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import database  # noqa: E402
from server.auth.services import actor_for_user, create_user  # noqa: E402
from server.core.actor import SYSTEM  # noqa: E402
from server.core.writer import Edit, Source, writing  # noqa: E402
from server.transfer.importing import run_import  # noqa: E402
from server.transfer.services import find_duplicates  # noqa: E402

WORDS = ["Électricité", "Boulangerie", "Garage", "Fleurs", "Pharmacie", "Café", "Hôtel",
         "Plomberie", "Librairie", "Optique", "Coiffure", "Menuiserie"]  # fmt: skip
NAMES = ["Laurent", "Martin", "Dupont", "Bernard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Michel", "Lefebvre", "Garcia", "Roux", "Fournier", "Girard"]  # fmt: skip
CITIES = [("Lyon", "69001", 45.764, 4.8357), ("Paris", "75001", 48.8566, 2.3522),
          ("Marseille", "13001", 43.2965, 5.3698), ("Lille", "59000", 50.6292, 3.0573)]  # fmt: skip


def make_csv(rows: int, rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["Raison sociale", "Adresse", "Code postal", "Ville", "Pays", "Téléphone",
                     "Latitude", "Longitude", "Email"])  # fmt: skip
    written: list[list[str]] = []
    for n in range(rows):
        if written and rng.random() < 0.02:
            writer.writerow(rng.choice(written))
            continue
        city, postcode, lat, lng = rng.choice(CITIES)
        placed = rng.random() < 0.5
        row = [
            f"{rng.choice(WORDS)} {rng.choice(NAMES)} {n}",
            f"{rng.randint(1, 200)} rue {rng.choice(NAMES)}",
            postcode,
            city,
            "France",
            f"0{rng.randint(1, 9)} {rng.randint(10, 99)} {n // 10000 % 100:02d}"
            f" {n // 100 % 100:02d} {n % 100:02d}",
            f"{lat + rng.uniform(-0.05, 0.05):.6f}".replace(".", ",") if placed else "",
            f"{lng + rng.uniform(-0.05, 0.05):.6f}".replace(".", ",") if placed else "",
            f"contact{n}@example.fr",
        ]
        if rng.random() < 0.01:
            row[6] = "95"  # out of range
        written.append(row)
        writer.writerow(row)
    return out.getvalue().encode("cp1252", errors="replace")


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


async def run(engine: str, rows: int) -> None:
    rng = random.Random(7)
    body = make_csv(rows, rng)
    async with database(engine):
        user_id, _ = await create_user("boss", "bench-password-1", "manager", "north")
        actor = await actor_for_user(user_id)
        assert actor is not None
        probe_id = str(uuid.uuid4())
        async with writing(Source.REST) as writer:
            await writer.apply(actor, Edit("accounts", probe_id, {"name": "Probe"}))
        for dry_run in (True, False):
            waits: list[float] = []
            stop = asyncio.Event()
            phone = asyncio.create_task(phone_like_writes(stop, probe_id, waits))
            started = time.perf_counter()
            report = await run_import(actor, "accounts", body, dry_run=dry_run)
            elapsed = time.perf_counter() - started
            stop.set()
            await phone
            p99 = statistics.quantiles(waits, n=100)[98] if len(waits) >= 2 else float("nan")
            print(
                f"{engine:8} {'dry run' if dry_run else 'import '} {rows:>6} rows"
                f" ({len(body) / 1e6:.1f} MB): {elapsed:6.2f} s, {rows / elapsed:7.0f} rows/s;"
                f" created {report['created']}, duplicates {report['duplicates']},"
                f" errors {report['error_count']}; a phone's write meanwhile:"
                f" p50 {statistics.median(waits):.1f} ms, p99 {p99:.1f} ms, max {max(waits):.1f} ms"
                f" ({len(waits)} writes)",
                flush=True,
            )
        started = time.perf_counter()
        groups = await find_duplicates(actor, "accounts", 100)
        print(
            f"{engine:8} duplicate finder over {rows} accounts:"
            f" {time.perf_counter() - started:.2f} s, {len(groups['groups'])} groups",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        asyncio.run(run(engine, args.rows))


if __name__ == "__main__":
    main()
