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

import msgspec

from server.core.actor import Actor
from sync.protocol import SyncRequest, SyncResponse

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
    """The request as the engine gets it: the cursor without its version, or one it will
    not honour if the device pulled under another version of the user's scope."""
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
