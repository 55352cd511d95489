"""The cache of rows as clients see them (WireRowCache): what it gives back, that it stays
within its budget of bytes however large the rows, and that its entries cost the garbage
collector nothing once it has seen them."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime

import msgspec

from server.core.rows import WireRowCache
from sync.protocol import WireRow


def _row(n: int) -> WireRow:
    return WireRow(
        {
            "id": f"00000000-0000-0000-0000-{n:012d}",
            "name": f"Shop {n}",
            "lat": 48.85 + n / 1000,
            "deleted": False,
            "owner_id": None,
            "updated_at": datetime(2026, 11, 24, 8, n % 60, tzinfo=UTC),
        }
    )


def test_a_cached_row_comes_back_with_the_same_values_and_json() -> None:
    cache = WireRowCache(2**20)
    row = _row(7)
    cache.put(("epoch", "accounts", row.values["id"], 3), row)
    found = cache.get(("epoch", "accounts", row.values["id"], 3))
    assert found is not None
    assert found.values == row.values
    assert bytes(found.json()) == bytes(row.json())
    assert msgspec.json.decode(found.json())["name"] == "Shop 7"
    assert cache.get(("epoch", "accounts", row.values["id"], 4)) is None


def test_the_oldest_rows_go_first_when_the_cache_is_full() -> None:
    sizes = [WireRowCache.entry_bytes(len(_row(n).json()), len(_row(n).values)) for n in range(3)]
    cache = WireRowCache(sizes[1] + sizes[2])  # room for two
    for n in range(3):
        cache.put(("epoch", "accounts", str(n), 1), _row(n))
    assert [cache.get(("epoch", "accounts", str(n), 1)) is not None for n in range(3)] == [
        False,
        True,
        True,
    ]


def test_cached_rows_are_not_tracked_by_the_garbage_collector() -> None:
    """Tens of thousands of tracked entries made each full collection tens of ms long."""
    cache = WireRowCache(2**30)
    cache.put(("epoch", "accounts", "first", 1), _row(0))
    gc.collect()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(1, 2001):
        cache.put(("epoch", "accounts", str(n), 1), _row(n))
    # A collection untracks a tuple whose items are untracked; one whose items it untracks
    # on the same pass waits for the next.
    gc.collect()
    gc.collect()
    # Entries, their keys and their values are all untracked: nothing per row to scan.
    assert len(gc.get_objects()) - before < 50


def _note(n: int, size: int) -> WireRow:
    return WireRow(
        {
            "id": f"00000000-0000-0000-0000-{n:012d}",
            "account_id": "00000000-0000-0000-0000-000000000001",
            "body": ("é" if n % 2 else "x") * size,  # 2 and 1 bytes a character in UTF-8
            "updated_at": datetime(2026, 11, 24, 8, n % 60, tzinfo=UTC),
        }
    )


def test_huge_rows_cannot_grow_the_cache_past_its_budget() -> None:
    budget = 4 * 2**20
    cache = WireRowCache(budget)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1_000):  # 1,000 notes of 20,000 characters: 30 MB of JSON
            cache.put(("epoch", "notes", str(n), 1), _note(n, 20_000))
            assert cache.bytes <= budget
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= budget, held  # the estimate is an upper bound of what it holds
    assert 30 <= len(cache) < 1_000
    assert cache.get(("epoch", "notes", "999", 1)) is not None  # the newest are kept
    assert cache.get(("epoch", "notes", "0", 1)) is None
    # A row larger than the whole budget is not kept, and drops nothing.
    kept = len(cache)
    cache.put(("epoch", "notes", "huge", 1), _note(5, 3 * 2**20))
    assert cache.get(("epoch", "notes", "huge", 1)) is None and len(cache) == kept
    cache.resize(2**20)
    assert cache.bytes <= 2**20 and cache.get(("epoch", "notes", "999", 1)) is not None
