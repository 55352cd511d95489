"""The cache of rows as clients see them (WireRowCache): what it gives back, and that its
entries cost the garbage collector nothing once it has seen them."""

from __future__ import annotations

import gc
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
    cache = WireRowCache(10)
    row = _row(7)
    cache.put(("epoch", "accounts", row.values["id"], 3), row)
    found = cache.get(("epoch", "accounts", row.values["id"], 3))
    assert found is not None
    assert found.values == row.values
    assert bytes(found.json()) == bytes(row.json())
    assert msgspec.json.decode(found.json())["name"] == "Shop 7"
    assert cache.get(("epoch", "accounts", row.values["id"], 4)) is None


def test_the_oldest_rows_go_first_when_the_cache_is_full() -> None:
    cache = WireRowCache(2)
    for n in range(3):
        cache.put(("epoch", "accounts", str(n), 1), _row(n))
    assert [cache.get(("epoch", "accounts", str(n), 1)) is not None for n in range(3)] == [
        False,
        True,
        True,
    ]


def test_cached_rows_are_not_tracked_by_the_garbage_collector() -> None:
    """Tens of thousands of tracked entries made each full collection tens of ms long."""
    cache = WireRowCache(5000)
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
