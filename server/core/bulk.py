"""Bulk writes running in this process, for the background jobs that can wait for them.

An import writes thousands of records through the one writer in short batches. The
geocoder, running beside it, takes turns with it for the writer: each of its rounds is six
transactions more, each a commit that the import's next batch and the phones' writes wait
behind, placing the import's own accounts as they arrive (on PostgreSQL, some 15,000 of a
50,000-row import's 24,000 during it: a large share of the writer's time). While a bulk
write runs, the geocoder holds off, and places the accounts once it has ended; people's
writes are never held off. Only this process's bulk writes are seen: a geocoder in another
process (`fieldcrm worker`) goes on.

A bulk write also keeps PostgreSQL's statistics of the tables it grows fresh
(`Statistics`): its own batches' queries, the phones' pulls and the import's status are
planned by them, and a plan made for an empty table can scan every row for each row
(docs/performance.md, "An import's statistics").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from server import db

_running = 0
# A bulk write has its tables analyzed once it wrote this many rows, then each time it has
# written as many again as at the last time (5 times in a 50,000-row import), and at its end.
FIRST_ANALYZE_ROWS = 2_000
# What every bulk write of records grows besides its table: the change log, the history.
LOGGED = ("sync_changes", "history")


@contextmanager
def bulk_write() -> Iterator[None]:
    """Mark a bulk write (an import's batches) as running for the block's duration."""
    global _running
    _running += 1
    try:
        yield
    finally:
        _running -= 1


def bulk_write_running() -> bool:
    """Whether a bulk write is running in this process."""
    return _running > 0


class Statistics:
    """Fresh PostgreSQL statistics for a bulk write's tables: `wrote(n)` after each batch
    (outside its transaction) has them analyzed as they double, `done()` once at the end.
    Nothing on SQLite (db.analyze)."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)
        self.written = 0
        self._next = FIRST_ANALYZE_ROWS
        self._analyzed_at = 0

    async def wrote(self, rows: int) -> None:
        self.written += rows
        if self.written >= self._next:
            await self._analyze()
            self._next = self.written * 2

    async def done(self) -> None:
        if self.written > self._analyzed_at:
            await self._analyze()

    async def _analyze(self) -> None:
        await db.analyze(self.tables)
        self._analyzed_at = self.written
