"""The wire types of `/api/privacy/...` (SPEC section 12)."""

from __future__ import annotations

from typing import Any

import msgspec


class EraseRequest(msgspec.Struct, kw_only=True):
    table: Any = None
    id: Any = None


class ErasureAnswer(msgspec.Struct, kw_only=True):
    erasure_id: str
    table: str
    id: str
    erased_at: str
    erased_by: str
    records: int  # rows erased: the record, what hung off it, their conflicts and refusals
    reclaimed: bool  # the engine has given back their space (docs/privacy.md)
