"""Import and duplicates (SPEC sections 8 and 9) on SQLite and PostgreSQL, over HTTP.

    .venv/bin/python bench/import.py [--rows 50000] [--finder 100000]
                                     [--engines sqlite,postgres]
                                     [--skip import,real,dry,revert,finder]

For each engine, a database made for the run (bench/support.py) and `fieldcrm serve` in a
subprocess (bench/sync.py's `serving`; its background jobs run, the geocoder included):

  import  a CSV of --rows accounts as a French Excel writes it (`;`, Windows-1252, decimal
          commas), imported by a manager in the background (`?background=true`): a dry run,
          then the real run, each timed from the upload to the job's end as its status
          shows it (polled every 0.25 s); then its revert. Meanwhile a rep's phone syncs
          every 100 ms with one edit (and pulls what the import writes, 500 rows a page, as
          the app does): its round trips' p50, p99 and max. Rows: names of a few shapes,
          French addresses, phones written nationally, half with a position, 2% repeated
          (duplicates within the file), 1% with an error.
  finder  --finder accounts loaded in bulk (40% in one dense city, the rest in 19 others;
          2% entered twice a few metres apart with a spelling of their own; some sharing a
          phone, an email or a website), then `GET /api/duplicates/accounts` as a manager
          who sees them all: its time, three runs.

Targets (issue 15): 50,000 accounts imported in under 60 s with the phone's p99 under
200 ms meanwhile; the finder over 100,000 accounts in under 10 s. The machine's 2 cores run
the server, the phone and the polling at once (and may be shared with other work): the
server's CPU time and the load average are printed beside each figure, to judge it by.
Prints; asserts nothing. The phone's own check (10,000 accounts in IndexedDB) is in
bench/pwa.py.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402

from bench.support import LeanClient, database, settle_after_bulk_load  # noqa: E402
from bench.sync import Loader, Phone, add_user, cpu_seconds, serving  # noqa: E402
from server import db  # noqa: E402
from server.core.actor import team_scope  # noqa: E402
from server.core.phones import e164  # noqa: E402

WORDS = ["Électricité", "Boulangerie", "Garage", "Fleurs", "Pharmacie", "Café", "Hôtel",
         "Plomberie", "Librairie", "Optique", "Coiffure", "Menuiserie"]  # fmt: skip
NAMES = ["Laurent", "Martin", "Dupont", "Bernard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Michel", "Lefebvre", "Garcia", "Roux", "Fournier", "Girard"]  # fmt: skip
CITIES = [("Lyon", "69001", 45.764, 4.8357), ("Paris", "75001", 48.8566, 2.3522),
          ("Marseille", "13001", 43.2965, 5.3698), ("Lille", "59000", 50.6292, 3.0573)]  # fmt: skip
FINDER_CITIES = [
    (48.8566, 2.3522), (45.764, 4.8357), (43.2965, 5.3698), (50.6292, 3.0573),
    (43.6047, 1.4442), (44.8378, -0.5792), (47.2184, -1.5536), (48.5734, 7.7521),
    (43.7102, 7.262), (48.1173, -1.6778), (49.2583, 4.0317), (45.1885, 5.7245),
    (47.322, 5.0415), (43.8367, 4.3601), (47.3941, 0.6848), (45.7772, 3.087),
    (49.4431, 1.0993), (48.6921, 6.1844), (43.2951, -0.3708), (47.9029, 1.909),
]  # fmt: skip
POLL_S = 0.25
PHONE_EVERY_S = 0.1

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


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


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def latencies(waits: list[float]) -> str:
    if not waits:
        return "no syncs"
    return (
        f"p50 {statistics.median(waits):.0f} ms, p99 {pct(waits, 0.99):.0f} ms,"
        f" max {max(waits):.0f} ms ({len(waits)} syncs)"
    )


class PhoneLoop:
    """A rep's phone syncing one edit every PHONE_EVERY_S while a block runs."""

    def __init__(self, base: str, headers: dict[str, str], account_id: str) -> None:
        self.phone = Phone(headers)
        self.http = LeanClient(base)
        self.account_id = account_id
        self.waits: list[tuple[float, float]] = []  # (when it started, ms)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.phone.sync(self.http)  # up to date first
        while (await self.phone.sync(self.http))["has_more"]:
            pass
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            self.phone.write("accounts", self.account_id, {"city": f"Lyon {n}"})
            began = time.perf_counter()
            answer = await self.phone.sync(self.http)
            self.waits.append((began, answer["_ms"]))
            await asyncio.sleep(PHONE_EVERY_S)

    async def finish(self) -> list[float]:
        return [ms for _, ms in await self.finish_timed()]

    async def finish_timed(self) -> list[tuple[float, float]]:
        self.stop.set()
        if self.task is not None:
            await self.task
        await self.http.aclose()
        waits, self.waits = self.waits, []
        return waits


def by_phase(timed: list[tuple[float, float]], phases: dict[str, float]) -> str:
    """The phone's syncs by the import's phase they started in (before the upload: idle)."""
    marks = sorted(phases.items(), key=lambda item: item[1])
    lines = []
    for (name, begins), (_, ends) in zip(marks, marks[1:], strict=False):
        waits = [ms for began, ms in timed if begins <= began < ends]
        lines.append(f"{'':8}     {name:5} ({ends - begins:5.1f} s): {latencies(waits)}")
    idle = [ms for began, ms in timed if began < marks[0][1]]
    lines.append(f"{'':8}     idle before: {latencies(idle)}")
    return "\n".join(lines)


async def status_of(http: LeanClient, import_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/import/{import_id}")
    answer: dict[str, Any] = _decode.decode(response.content)
    return answer


async def run_in_background(
    http: LeanClient, body: bytes, dry_run: bool, phases: dict[str, float]
) -> tuple[float, float, dict[str, Any]]:
    """Upload, then poll until the job ends: the seconds to the answer, to the end, and the
    import's last status. `phases` gets the clock (perf_counter) at each phase's start:
    read (the file read on the request), plan (the rows checked, up to the first status
    with a preview), write (to the job's end), and its end."""
    started = time.perf_counter()
    phases["read"] = started
    query = "background=true" + ("&dry_run=true" if dry_run else "")
    response = await http.request(
        "POST", f"/api/import/accounts?{query}", body, headers={"Content-Type": "text/csv"}
    )
    answered = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"import answered {response.status_code}: {response.content[:300]!r}")
    import_id = _decode.decode(response.content)["import_id"]
    phases["plan"] = started + answered
    while True:
        status = await status_of(http, import_id)
        if "write" not in phases and (status["preview"] or status["written"]):
            phases["write"] = time.perf_counter()
        if status["state"] != "running":
            phases["end"] = time.perf_counter()
            phases.setdefault("write", phases["end"])
            return answered, time.perf_counter() - started, status
        await asyncio.sleep(POLL_S)


async def bench_import(
    engine: str, rows: int, real: bool = True, dry: bool = True, revert: bool = True
) -> None:
    body = make_csv(rows, random.Random(7))
    async with database(engine) as url:
        team_id = str(uuid.uuid4())
        await db.fetch(
            "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})",
            team_id,
            "north",
            datetime.now(UTC),
        )
        _, manager = await add_user(team_id, "manager")
        rep, rep_headers = await add_user(team_id, "rep")
        loader = Loader(random.Random(1))
        fields = {"name": "Probe", "owner_id": rep.user_id, "team_id": team_id}
        probe = loader.add("accounts", team_scope(team_id), rep.user_id, fields)
        await loader.write()
        async with serving(url) as (base, pid):
            http = LeanClient(base, manager)
            for dry_run in (True,) * dry + (False,) * real:
                phone = PhoneLoop(base, rep_headers, probe)
                await phone.start()
                await http.aclose()  # as above
                await asyncio.sleep(3)  # the phone alone first: "idle before"
                cpu, load = cpu_seconds(pid), os.getloadavg()[0]
                phases: dict[str, float] = {}
                answered, took, status = await run_in_background(http, body, dry_run, phases)
                cpu, load = cpu_seconds(pid) - cpu, (load + os.getloadavg()[0]) / 2
                timed = await phone.finish_timed()
                waits = [ms for _, ms in timed]
                print(
                    f"{engine:8} {'dry run' if dry_run else 'import '} {rows} rows"
                    f" ({len(body) / 1e6:.1f} MB): answered in {answered:.2f} s, done in"
                    f" {took:.1f} s ({rows / took:.0f} rows/s), {status['state']}; created"
                    f" {status['created']}, duplicates {status['duplicates']}, errors"
                    f" {status['error_count']}, to geocode {status['geocode']}",
                    flush=True,
                )
                print(
                    f"{'':8}   server CPU {cpu:.1f} s (the phone's syncs and the geocoder"
                    f" included); load average {load:.1f}",
                    flush=True,
                )
                print(f"{'':8}   a phone syncing meanwhile: {latencies(waits)}", flush=True)
                print(by_phase(timed, phases), flush=True)
            if real:
                print(
                    f"{'':8}   geocoding of the import's {status['geocode']} accounts without"
                    f" a position, at its end: {status['geocoding']}",
                    flush=True,
                )
            if not (real and revert):
                await http.aclose()
                return
            phone = PhoneLoop(base, rep_headers, probe)
            await phone.start()
            started = time.perf_counter()
            # A new connection: the server closes one left idle for 5 s (uvicorn's keep-alive).
            await http.aclose()
            response = await http.request("DELETE", f"/api/import/{status['import_id']}")
            took = time.perf_counter() - started
            waits = await phone.finish()
            reverted = _decode.decode(response.content)
            print(
                f"{engine:8} revert: {took:.1f} s, deleted {reverted.get('deleted')}, kept"
                f" {len(reverted.get('kept', []))}; a phone syncing meanwhile: {latencies(waits)}",
                flush=True,
            )
            await http.aclose()


def finder_accounts(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Accounts as a large organisation holds them: 40% in one dense city; 2% entered twice
    (a few metres apart, spelt their own way); a few phones, emails and websites shared."""
    made: list[dict[str, Any]] = []
    while len(made) < count:
        n = len(made)
        if made and rng.random() < 0.02:
            twin = dict(rng.choice(made))
            twin["name"] = twin["name"].upper().replace(" ", " & ", 1) + " SARL"
            twin["lat"] += rng.uniform(-0.0002, 0.0002)
            twin["lng"] += rng.uniform(-0.0002, 0.0002)
            made.append(twin)
            continue
        lat, lng = FINDER_CITIES[0] if rng.random() < 0.4 else rng.choice(FINDER_CITIES[1:])
        spread = 0.06 if (lat, lng) == FINDER_CITIES[0] else 0.1
        phone = f"0{rng.randint(1, 5)}{rng.randint(10_000_000, 99_999_999)}"
        made.append(
            {
                "name": f"{rng.choice(WORDS)} {rng.choice(NAMES)} {rng.choice(NAMES)} {n}",
                "lat": lat + rng.uniform(-spread, spread),
                "lng": lng + rng.uniform(-spread, spread),
                "country": "FR",
                "phone": phone if rng.random() < 0.998 else "01 23 45 67 89",
                "email": f"shop{n}@example.fr" if rng.random() < 0.999 else "info@example.fr",
                "website": f"https://shop{n}.example.fr" if rng.random() < 0.5 else None,
            }
        )
    return made


async def bench_finder(engine: str, count: int) -> None:
    async with database(engine) as url:
        team_id = str(uuid.uuid4())
        await db.fetch(
            "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})",
            team_id,
            "north",
            datetime.now(UTC),
        )
        manager, headers = await add_user(team_id, "manager")
        loader = Loader(random.Random(3))
        for fields in finder_accounts(count, random.Random(5)):
            fields["phone_e164"] = e164(fields["phone"], "FR")
            fields |= {"owner_id": manager.user_id, "team_id": team_id, "status": "customer"}
            loader.add("accounts", team_scope(team_id), manager.user_id, fields)
        await loader.write()
        await settle_after_bulk_load()
        async with serving(url) as (base, pid):
            http = LeanClient(base, headers)
            for run in range(3):
                cpu, started = cpu_seconds(pid), time.perf_counter()
                response = await http.get("/api/duplicates/accounts?limit=1000")
                took, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
                groups = _decode.decode(response.content)["groups"]
                print(
                    f"{engine:8} duplicate finder over {count} accounts, run {run + 1}:"
                    f" {took:.2f} s (server CPU {cpu:.1f} s), {len(groups)} groups (limit"
                    f" 1000), status {response.status_code}; load average"
                    f" {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--finder", type=int, default=100_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument(
        "--skip",
        default="",
        help="import (all of it), real (the real run and its revert: the dry run alone),"
        " dry (the dry run: the real run alone), revert and/or finder, comma separated",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    for engine in args.engines.split(","):
        if "import" not in skip:
            real, dry, revert = ("real" not in skip, "dry" not in skip, "revert" not in skip)
            asyncio.run(bench_import(engine, args.rows, real=real, dry=dry, revert=revert))
        if "finder" not in skip:
            asyncio.run(bench_finder(engine, args.finder))


if __name__ == "__main__":
    main()
