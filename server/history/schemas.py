"""The answer of `GET /api/history/{table}/{id}` (SPEC section 11)."""

from __future__ import annotations

from typing import Any

import msgspec


class Entry(msgspec.Struct, kw_only=True):
    seq: int
    at: str
    user_id: str | None
    username: str | None
    client_id: str
    source: str
    op: str
    fields: dict[str, Any]


class History(msgspec.Struct, kw_only=True):
    entries: list[Entry]
