"""Searching long notes: the index (FTS5 on SQLite, GIN full text on PostgreSQL) against the
LIKE scan it replaced.

    .venv/bin/python bench/search.py [--notes 2000] [--engines sqlite,postgres]

A database made for the run (bench.support.database), migrated, filled with notes of
20,000 characters of random words in one team. For a few searches (a word, a one-letter
prefix, eight one-letter prefixes: the crafted search of issue 14), the median server time
of the list's statement through the index, and of `LOWER(body) LIKE '%typed%'` (what the
list ran before). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import string
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database  # noqa: E402
from server import db  # noqa: E402
from server.records.search import search_clause  # noqa: E402

SCOPE = "team:00000000-0000-0000-0000-000000000001"
VOCABULARY = ["".join(random.Random(n).choices(string.ascii_lowercase, k=7)) for n in range(5000)]
COLUMNS = ["id", "created_at", "updated_at", "seq", "scope", "deleted", "clocks", "account_id"]


async def load(count: int) -> None:
    rng = random.Random(count)
    now = datetime.now(UTC)
    account = str(uuid.uuid4())
    names = ", ".join([*COLUMNS, "body"])
    for start in range(0, count, 100):
        rows = []
        for n in range(start, min(count, start + 100)):
            body = " ".join(rng.choices(VOCABULARY, k=2500))[:20_000]
            rows += [str(uuid.uuid4()), now, now, n + 1, SCOPE, False, "{}", account, body]
        marks = ", ".join("(" + ", ".join("{}" for _ in range(9)) + ")" for _ in rows[::9])
        async with db.transaction():
            await db.fetch(f"INSERT INTO notes ({names}) VALUES {marks}", *rows)
    if db.is_postgres():
        await db.fetch("ANALYZE notes")


async def timed(sql: str, *args: object) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        await db.fetch(sql, *args)
        runs.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(runs)


async def run(engine: str, count: int) -> None:
    async with database(engine):
        started = time.perf_counter()
        await load(count)
        print(f"{engine} {count:,} notes of 20,000 characters: loaded in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        base = "SELECT id, seq FROM notes WHERE deleted = {} AND scope IN ({})"
        for typed in ([VOCABULARY[7]], ["a"], list("abcdefgh")):
            before, before_args, clause, args = search_clause("notes", typed)
            indexed = await timed(
                f"{before}{base}{clause} ORDER BY updated_at DESC, id LIMIT 51",
                *before_args, False, SCOPE, *args,
            )  # fmt: skip
            like = await timed(
                f"{base} AND LOWER(body) LIKE {{}} ORDER BY updated_at DESC, id LIMIT 51",
                False, SCOPE, f"%{' '.join(typed)}%",
            )  # fmt: skip
            print(f"  q={' '.join(typed)!r:20} index {indexed:8.1f} ms   LIKE {like:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=2000)
    parser.add_argument("--engines", default="sqlite,postgres")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        asyncio.run(run(engine, args.notes))


if __name__ == "__main__":
    main()
