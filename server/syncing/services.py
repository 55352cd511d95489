"""A device that pulled under what its user saw before gets a reset.

When a user's scope changes wholesale (`fieldcrm user set --team`, or to or from admin),
their scope version is bumped (server/auth/services.py). The cursor a client gets carries
the version it was pulled under, as `ENGINE_CURSOR~VERSION` (nothing is added while the
version is 0, so cursors are as before for everyone else). A cursor of another version is
not handed to the engine: it gets one it cannot honour, so it answers `reset: true`, pages
the user's whole new scope and the client drops what the reset did not send (rule 9): the
old team's records leave the device and the new team's arrive.

The version is the one read with the caller's token when the request began. If the change
lands while a request is under way, that request still pulls (and stamps) the old scope,
and the next one resets: no device is left holding a scope its user no longer has.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor
from server.core.fields import parse_datetime
from server.core.store import REPLICA_STORE
from sync.engine import Behind, round_trip
from sync.protocol import DeviceReport, SyncRequest, SyncResponse

SEPARATOR = "~"
# No cursor of the engine's (sync/cursor.py): it answers a reset from the start.
RESCOPED = "rescoped"


def split_cursor(text: str) -> tuple[str, int]:
    """(the engine's cursor, the scope version it was pulled under)."""
    engine_cursor, separator, version = text.rpartition(SEPARATOR)
    if separator and version.isdigit() and len(version) <= 9:
        return engine_cursor, int(version)
    return text, 0


def for_engine(request: SyncRequest, actor: Actor) -> SyncRequest:
    """The request as the engine gets it: the device report cleaned, and the cursor
    without its version, or one it will not honour if the device pulled under another
    version of the user's scope."""
    if request.device is not None:
        request = msgspec.structs.replace(request, device=clean_device(request.device))
    if request.cursor is None:
        return request
    engine_cursor, version = split_cursor(request.cursor)
    if version != actor.scope_version:
        engine_cursor = RESCOPED
    return msgspec.structs.replace(request, cursor=engine_cursor)


def for_client(response: SyncResponse, actor: Actor) -> SyncResponse:
    """The response as the client gets it: the cursor stamped with the scope version it was
    pulled under."""
    if actor.scope_version == 0:
        return response
    cursor = f"{response.cursor}{SEPARATOR}{actor.scope_version}"
    return msgspec.structs.replace(response, cursor=cursor)


async def pull_from_replica(actor: Actor, request: SyncRequest, now_ms: int) -> SyncResponse | None:
    """The answer to a request without mutations from the streaming replica
    (DATABASE_REPLICA_URL), or None when it must come from the primary: the request
    writes, there is no replica, the replica is down or too far behind, or it has not yet
    replayed everything the request's cursor has seen (SPEC section 15: a cursor never
    goes back and no change is skipped). `request` is as the engine gets it (for_engine)."""
    if request.mutations or not db.has_replica():
        return None
    try:
        return await round_trip(REPLICA_STORE, actor, request, now_ms, lagging=True)
    except (Behind, db.ReplicaUnavailable):
        return None


# Rule 14's device report. A bad value is dropped (kept as null), never the request: a
# phone whose report is off must still get its work to the server (docs/sync-protocol.md).
MAX_PENDING = 1_000_000_000
DEVICE_TEXT = 64  # app_version and platform are cut to this many characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_device(device: DeviceReport) -> DeviceReport:
    """The device report with each field checked alone: `pending` a whole number in
    [0, 10^9], `oldest_pending_at` an ISO 8601 time with an offset (kept in UTC),
    `app_version` and `platform` text without control characters, cut to 64 characters.
    Anything else becomes null."""
    pending = device.pending
    if isinstance(pending, bool) or not isinstance(pending, int):
        pending = None
    elif not 0 <= pending <= MAX_PENDING:
        pending = None
    oldest: str | None
    try:
        oldest = parse_datetime(device.oldest_pending_at).isoformat().replace("+00:00", "Z")
    except ValueError:
        oldest = None
    return DeviceReport(
        pending=pending,
        oldest_pending_at=oldest,
        app_version=_device_text(device.app_version),
        platform=_device_text(device.platform),
    )


def _device_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub("", value).strip()[:DEVICE_TEXT]
    return text or None
