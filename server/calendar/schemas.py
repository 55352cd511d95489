"""The wire types of the calendar feed's endpoints."""

from __future__ import annotations

import msgspec


class FeedRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Leave out account names, addresses and positions (a calendar shared with family).
    private: bool = False


class FeedOut(msgspec.Struct, kw_only=True):
    url: str  # shown once: only its hash is kept
    private: bool


class FeedStatus(msgspec.Struct, kw_only=True):
    """Whether the caller has a feed (its link is not kept, so it is not shown again)."""

    active: bool
    private: bool = False
    created_at: str | None = None
