from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post

from server.auth.dependencies import CurrentActor
from server.errors import ApiError
from server.syncing.store import STORE
from sync.engine import round_trip
from sync.protocol import (
    MAX_BODY_BYTES,
    MAX_MUTATIONS,
    PROTOCOL_VERSION,
    Envelope,
    MidGap,
    SyncRequest,
    SyncResponse,
)

MSGPACK = "application/msgpack"
MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")

_json_envelope = msgspec.json.Decoder(Envelope)
_json_request = msgspec.json.Decoder(SyncRequest)
_msgpack_envelope = msgspec.msgpack.Decoder(Envelope)
_msgpack_request = msgspec.msgpack.Decoder(SyncRequest)
_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()


def decode_request(body: bytes, content_type: str) -> SyncRequest:
    media = content_type.split(";")[0].strip().lower() or "application/json"
    if media in MSGPACK_TYPES:
        envelope_decoder, request_decoder = _msgpack_envelope, _msgpack_request
    elif media == "application/json" or media.endswith("+json"):
        envelope_decoder, request_decoder = _json_envelope, _json_request
    else:
        raise ApiError(
            415, "unsupported_media_type", "Send application/json or application/msgpack."
        )
    try:
        envelope = envelope_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed", f"The body is not a sync request: {exc}") from None
    if envelope.protocol != PROTOCOL_VERSION:
        raise ApiError(
            426, "upgrade_required", "This server speaks sync protocol 1; update the app."
        )
    try:
        request = request_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed", f"The sync request is malformed: {exc}") from None
    if len(request.mutations) > MAX_MUTATIONS:
        raise ApiError(413, "too_large", f"Send at most {MAX_MUTATIONS} mutations per request.")
    if not 1 <= len(request.client_id) <= 64:
        raise ApiError(400, "malformed", "client_id must be 1 to 64 characters.")
    if request.mutations and request.mutations[0].mid < 1:
        raise ApiError(400, "malformed", "mids start at 1.")
    return request


def encode_response(response: SyncResponse, accept: str) -> Response[bytes]:
    if any(kind in accept.lower() for kind in MSGPACK_TYPES):
        return Response(_msgpack_encoder.encode(response), media_type=MSGPACK)
    return Response(_json_encoder.encode(response), media_type="application/json")


class SyncController(Controller):
    path = "/api/sync"
    tags = ["sync"]

    @post("/v1", operation_id="sync", request_max_body_size=MAX_BODY_BYTES, status_code=200)
    async def sync(self, request: Request[Any, Any, Any], actor: CurrentActor) -> Response[bytes]:
        """Push the client's queued writes and pull what it has not seen, in one commit."""
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", "A sync request may be at most 4 MiB.")
        sync_request = decode_request(body, request.headers.get("content-type", ""))
        try:
            response = await round_trip(STORE, actor, sync_request, int(time.time() * 1000))
        except MidGap as gap:
            raise ApiError(
                409,
                "mid_gap",
                f"Mutations must continue from mid {gap.expected}; resend from there.",
                expected=gap.expected,
            ) from None
        return encode_response(response, request.headers.get("accept", ""))
