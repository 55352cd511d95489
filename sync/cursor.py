"""The pull cursor: an opaque string to clients, a position in the change log to us.

The change log's order is kept per domain (a team on PostgreSQL; one domain on SQLite):
within a domain, seq order is commit order, across domains it need not be. So a position
is a seq per domain: `seq` for every domain but the few `behind` it, each at a seq of its
own (docs/sync-protocol.md, "The cursor"). A position with nothing behind is written as
the cursor always was, `1.<epoch>.<seq>.<fresh until>.<reset flag>`, and that is exact:
when there was one counter, its seq N was every domain's. Otherwise
`2.<epoch>.<seq>.<fresh until>.<reset flag>.<domain>:<seq>,...`, the domains in order.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A seq as `encode` writes it: ASCII digits, no sign or padding, and small enough for a
# BIGINT column (a larger one is no position of ours, and would fail in the database).
_SEQ = re.compile(r"0|[1-9][0-9]{0,18}")
# A domain as the server names them: a team's UUID hex, or '' for no team.
_DOMAIN = re.compile(r"[0-9a-f]{0,32}")
MAX_SEQ = 2**63 - 1
# How many domains a cursor may hold behind its seq, and so the longest cursor: an
# admin's, who sees every team (past that, `behind` gives every domain its lowest seq).
MAX_BEHIND = 256
_MAX_ONE = 100  # a `1.` cursor's longest
_MAX_TWO = _MAX_ONE + MAX_BEHIND * 53


class Position(NamedTuple):
    """Where a pull stands: every change of a domain at or below its seq is pulled."""

    seq: int  # the seq of every domain not in `behind`
    behind: tuple[tuple[str, int], ...] = ()  # (domain, seq below `seq`), by domain

    def at(self, domain: str) -> int:
        """This position's seq in `domain`."""
        for name, seq in self.behind:
            if name == domain:
                return seq
        return self.seq

    @property
    def lowest(self) -> int:
        """The lowest seq of any domain: no change at or below it is still to come."""
        return min([self.seq, *(seq for _, seq in self.behind)])


def position(seqs: dict[str, int], default: int) -> Position:
    """The position with these domains at these seqs and every other at `default`,
    which must be at least each of them (it is the greatest seq of the position). More
    than MAX_BEHIND domains behind it: every domain at the lowest of them (changes may come
    twice; none is skipped)."""
    behind = tuple(sorted((d, s) for d, s in seqs.items() if s < default))
    if len(behind) > MAX_BEHIND:
        return Position(min(s for _, s in behind))
    return Position(default, behind)


class Cursor(NamedTuple):
    epoch: str  # the database's identity: a cursor from another database forces a reset
    seq: int  # every change with a greater seq is still to be pulled (but see `behind`)
    fresh_until: int  # in a from-scratch scan, tombstones up to here need not be sent
    reset: bool  # this scan is a reset: tell the client on every page
    behind: tuple[tuple[str, int], ...] = ()  # domains whose changes after their seq are too

    @property
    def position(self) -> Position:
        return Position(self.seq, self.behind)

    def encode(self) -> str:
        head = f"{self.epoch}.{self.seq}.{self.fresh_until}.{int(self.reset)}"
        if not self.behind:
            return f"1.{head}"
        return f"2.{head}." + ",".join(f"{domain}:{seq}" for domain, seq in self.behind)


def decode_cursor(text: str | None) -> Cursor | None:
    """The cursor a string stands for, or None when it is not one of ours."""
    if not text or len(text) > _MAX_TWO:
        return None
    parts = text.split(".")
    if parts[0] == "1" and (len(parts) != 5 or len(text) > _MAX_ONE):
        return None
    if parts[0] not in ("1", "2") or (parts[0] == "2" and len(parts) != 6):
        return None
    if parts[4] not in ("0", "1") or not all(_SEQ.fullmatch(part) for part in parts[2:4]):
        return None
    seq, fresh_until = int(parts[2]), int(parts[3])
    if seq > MAX_SEQ or fresh_until > MAX_SEQ:
        return None
    behind: list[tuple[str, int]] = []
    if parts[0] == "2":
        for mark in parts[5].split(","):
            domain, colon, at = mark.partition(":")
            if not colon or not _DOMAIN.fullmatch(domain) or not _SEQ.fullmatch(at):
                return None
            if int(at) >= seq or (behind and domain <= behind[-1][0]):
                return None  # not as encode writes it: behind the seq, in order, once
            behind.append((domain, int(at)))
        if len(behind) > MAX_BEHIND:
            return None
    return Cursor(parts[1], seq, fresh_until, parts[4] == "1", tuple(behind))
