"""Bulk writes running in this process, for the background jobs that can wait for them.

An import writes thousands of records through the one writer in short batches. The
geocoder, running beside it, takes turns with it for the writer: each of its rounds is six
transactions more, each a commit that the import's next batch and the phones' writes wait
behind, placing the import's own accounts as they arrive (on PostgreSQL, some 15,000 of a
50,000-row import's 24,000 during it: a large share of the writer's time). While a bulk
write runs, the geocoder holds off, and places the accounts once it has ended; people's
writes are never held off. Only this process's bulk writes are seen: a geocoder in another
process (`fieldcrm worker`) goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_running = 0


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
