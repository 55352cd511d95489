"""Hybrid logical clocks and the keys that order writes to one field."""

from __future__ import annotations

from typing import NamedTuple

MAX_AHEAD_MS = 300_000  # a phone whose clock runs ahead cannot win for more than 5 minutes
# The bounds of a write's clock (SPEC 4 rule 3, v1.1): ms a whole number JavaScript holds
# exactly and not before 2000-01-01 (no phone's clock is that far behind), the counter
# below 2^31. A counter that would pass its bound carries into the next millisecond.
MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_MS = 2**53 - 1
MAX_COUNTER = 2**31 - 1


class Stamp(NamedTuple):
    """Who set a field and when: the write's effective clock, its client, its user, and
    the seq of the change that set it (so a later writer can tell it had not seen it).
    Stored and sent as the array [ms, counter, client_id, user_id, seq]."""

    ms: int
    counter: int
    client_id: str
    user_id: str | None
    seq: int

    @property
    def key(self) -> tuple[int, int, str]:
        """The order of writes: effective ms, then counter, then client id."""
        return (self.ms, self.counter, self.client_id)

    @property
    def hlc(self) -> tuple[int, int]:
        return (self.ms, self.counter)


def valid_hlc(hlc: tuple[int, int]) -> bool:
    """Whether a client's clock is within the bounds: outside them a write is refused and
    moves no clock."""
    ms, counter = hlc
    return MIN_MS <= ms <= MAX_MS and 0 <= counter <= MAX_COUNTER


def effective_hlc(hlc: tuple[int, int], server_now_ms: int) -> tuple[int, int]:
    """The clock the server uses for a write: its ms is clamped to five minutes ahead of
    the server, so a phone with a wrong clock cannot win every merge for a year."""
    ms, counter = hlc
    return (min(ms, server_now_ms + MAX_AHEAD_MS), counter)


def tick(last: tuple[int, int], now_ms: int) -> tuple[int, int]:
    """The next clock reading after `last`: wall time when it moved on, else a counter bump,
    which carries into the next millisecond rather than pass MAX_COUNTER."""
    if now_ms > last[0]:
        return (now_ms, 0)
    if last[1] >= MAX_COUNTER:
        return (last[0] + 1, 0)
    return (last[0], last[1] + 1)
