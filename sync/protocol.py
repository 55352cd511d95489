"""The wire types of `POST /api/sync/v1`, protocol version 1.

The wire only grows: a new field always has a default, and no field changes type,
because phones run old code for weeks.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec

PROTOCOL_VERSION = 1
MAX_MUTATIONS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_PULL_LIMIT = 500
MAX_PULL_LIMIT = 2000


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(text: str) -> str:
    """`text` as `str(uuid.UUID(text))` gives it (lower case, with hyphens), or ValueError.
    Record ids come in that form already: they are checked, not parsed (a few times faster:
    every write names one or two)."""
    if _CANONICAL_UUID.fullmatch(text):
        return text
    return str(uuid.UUID(text))


class Mutation(msgspec.Struct, kw_only=True):
    mid: int
    table: str
    id: str
    op: str  # "upsert" | "delete"; anything else is rejected alone
    fields: dict[str, Any] = {}
    base_seq: int | None = None
    hlc: tuple[int, int]


class DeviceReport(msgspec.Struct, kw_only=True, omit_defaults=True):
    """v1.1 (rule 14): the phone's own state after the request's writes are counted as
    sent. Each field is taken as it comes and checked by the server field by field (a bad
    value is dropped, never the request): a device report must not stop a phone's work
    from reaching the server."""

    pending: Any = None  # writes still queued on the phone
    oldest_pending_at: Any = None  # when the oldest of them was made (ISO 8601)
    app_version: Any = None
    platform: Any = None


class SyncRequest(msgspec.Struct, kw_only=True):
    protocol: int
    client_id: str
    cursor: str | None = None
    pull_limit: int = DEFAULT_PULL_LIMIT
    mutations: list[Mutation] = []
    device: DeviceReport | None = None  # v1.1: rule 14; None keeps the last one


class Envelope(msgspec.Struct):
    """Just enough of a request to answer 426 before looking at the rest."""

    protocol: Any = None


class MutationError(msgspec.Struct, kw_only=True):
    error: str
    detail: str


class MutationResult(msgspec.Struct, kw_only=True):
    mid: int
    status: str  # "applied" | "merged" | "rejected"
    hlc: tuple[int, int]
    replayed: bool = False
    error: MutationError | None = None
    # v1.1 (rule 13): the survivor a write to a merged-away record was applied to. Left
    # out of the answer when there is none (UNSET), which clients read as null.
    redirected_to: str | msgspec.UnsetType = msgspec.UNSET


class Ack(msgspec.Struct, kw_only=True):
    last_mid: int
    results: list[MutationResult]


class WireRow:
    """A row as clients see it, in one version (which never changes), with its JSON made
    once: a change that a team's devices all pull is encoded once, not once per device.
    Never modify `values`. A row may also be made from its column names and values
    (`packed`), which it turns into the dict only when asked for it."""

    __slots__ = ("_values", "_json", "_packed")

    def __init__(
        self,
        values: dict[str, Any] | None = None,
        json: msgspec.Raw | None = None,
        packed: tuple[tuple[str, ...], tuple[Any, ...]] | None = None,
    ) -> None:
        assert values is not None or packed is not None, "a row needs its values"
        self._values = values
        self._json = json
        self._packed = packed

    @property
    def values(self) -> dict[str, Any]:
        if self._values is None:
            assert self._packed is not None
            names, values = self._packed
            self._values = dict(zip(names, values, strict=True))
        return self._values

    def json(self) -> msgspec.Raw:
        if self._json is None:
            self._json = msgspec.Raw(_plain_json.encode(self.values))
        return self._json


class Change(msgspec.Struct, kw_only=True, omit_defaults=True):
    table: str
    id: str
    seq: int
    op: str  # "put" | "delete" | "evict"
    row: WireRow | dict[str, Any] | None
    # v1.1 (SPEC section 12): with an evict, the record was erased on request, not moved
    # out of sight; sent only when true.
    erased: bool = False
    # v1.1 (rule 13): with a delete, the survivor the record was merged into. Left out
    # of the answer when there is none (UNSET), which clients read as null.
    merged_into: str | msgspec.UnsetType = msgspec.UNSET


class SyncResponse(msgspec.Struct, kw_only=True):
    ack: Ack
    changes: list[Change]
    cursor: str
    has_more: bool
    reset: bool
    server_time: int
    hlc_max: tuple[int, int]


def _as_json(value: Any) -> Any:
    if isinstance(value, WireRow):
        return value.json()
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def _as_msgpack(value: Any) -> Any:
    if isinstance(value, WireRow):
        return value.values
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_plain_json = msgspec.json.Encoder()
json_encoder = msgspec.json.Encoder(enc_hook=_as_json)  # for responses (WireRow rows)
msgpack_encoder = msgspec.msgpack.Encoder(enc_hook=_as_msgpack)


class RequestRefused(Exception):
    """The whole request is refused: nothing of it is applied and no mid is consumed."""


class MidGap(RequestRefused):
    """The first new mid is not last + 1: answered 409 with the mid expected."""

    def __init__(self, expected: int) -> None:
        super().__init__(f"expected mid {expected}")
        self.expected = expected


class OverLimit(RequestRefused):
    """The request's writes would pass a limit (the writer's rate: 429; their team's
    storage quota: 413). Refused whole, its mids not consumed: the client keeps the writes
    and sends the same ones again later, `retry_after_s` from now if that is known."""

    def __init__(
        self, status: int, error: str, detail: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.retry_after_s = retry_after_s


class Rejected(Exception):
    """One mutation cannot be applied; it is answered `rejected` and the rest go on."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
