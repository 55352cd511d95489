"""The pull cursor: an opaque string to clients, a position in the change log to us."""

from __future__ import annotations

import re
from typing import NamedTuple

# A seq as `encode` writes it: ASCII digits, no sign or padding, and small enough for a
# BIGINT column (a larger one is no position of ours, and would fail in the database).
_SEQ = re.compile(r"0|[1-9][0-9]{0,18}")
MAX_SEQ = 2**63 - 1


class Cursor(NamedTuple):
    epoch: str  # the database's identity: a cursor from another database forces a reset
    seq: int  # every change with a greater seq is still to be pulled
    fresh_until: int  # in a from-scratch scan, tombstones up to here need not be sent
    reset: bool  # this scan is a reset: tell the client on every page

    def encode(self) -> str:
        return f"1.{self.epoch}.{self.seq}.{self.fresh_until}.{int(self.reset)}"


def decode_cursor(text: str | None) -> Cursor | None:
    """The cursor a string stands for, or None when it is not one of ours."""
    if not text or len(text) > 100:
        return None
    parts = text.split(".")
    if len(parts) != 5 or parts[0] != "1" or parts[4] not in ("0", "1"):
        return None
    if not all(_SEQ.fullmatch(part) for part in parts[2:4]):
        return None
    seq, fresh_until = int(parts[2]), int(parts[3])
    if seq > MAX_SEQ or fresh_until > MAX_SEQ:
        return None
    return Cursor(parts[1], seq, fresh_until, parts[4] == "1")
