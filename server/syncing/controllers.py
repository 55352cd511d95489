from __future__ import annotations

import asyncio
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import zstandard
from litestar import Controller, Request, Response, post

from server.auth.dependencies import CurrentActor
from server.bodies import check_depth
from server.core.store import STORE
from server.errors import ApiError, over_limit_error
from server.syncing import services
from sync.batching import Batcher
from sync.protocol import (
    MAX_BODY_BYTES,
    MAX_MUTATIONS,
    PROTOCOL_VERSION,
    Envelope,
    MidGap,
    OverLimit,
    SyncRequest,
    SyncResponse,
    json_encoder,
    msgpack_encoder,
)

# Sync answers are compressed here, not by the app's middleware (routes whose opt has this
# key are left out of it), so that clients that take zstd get it. The middleware uses the
# same threshold and gzip level for every other answer (server/app.py).
SKIP_COMPRESSION = "skip_compression"
COMPRESS_FROM_BYTES = 1024
GZIP_LEVEL = 1  # level 6 costs 2.5 times the CPU for 14% fewer bytes
_zstd = zstandard.ZstdCompressor(level=1)  # used on the event loop thread only
# A page of long notes compresses for tens of milliseconds: past this size it is done in a
# thread (zlib and zstd let go of the GIL), so the loop goes on answering everyone else.
OFF_LOOP_FROM_BYTES = 256 * 1024
_COMPRESSORS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="compress")

MSGPACK = "application/msgpack"
MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")

BATCHER = Batcher(STORE)

_json_envelope = msgspec.json.Decoder(Envelope)
_json_request = msgspec.json.Decoder(SyncRequest)
_msgpack_envelope = msgspec.msgpack.Decoder(Envelope)
_msgpack_request = msgspec.msgpack.Decoder(SyncRequest)


def decode_request(body: bytes, content_type: str) -> SyncRequest:
    media = content_type.split(";")[0].strip().lower() or "application/json"
    envelope_decoder: msgspec.json.Decoder[Envelope] | msgspec.msgpack.Decoder[Envelope]
    request_decoder: msgspec.json.Decoder[SyncRequest] | msgspec.msgpack.Decoder[SyncRequest]
    if media in MSGPACK_TYPES:
        envelope_decoder, request_decoder = _msgpack_envelope, _msgpack_request
    elif media == "application/json" or media.endswith("+json"):
        envelope_decoder, request_decoder = _json_envelope, _json_request
    else:
        raise ApiError(
            415, "unsupported_media_type", "Send application/json or application/msgpack."
        )
    check_depth(body, msgpack=media in MSGPACK_TYPES)
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


async def encode_response(
    response: SyncResponse, accept: str, accept_encoding: str
) -> Response[bytes]:
    if any(kind in accept.lower() for kind in MSGPACK_TYPES):
        body, media_type = msgpack_encoder.encode(response), MSGPACK
    else:
        body, media_type = json_encoder.encode(response), "application/json"
    headers = {"Vary": "Accept-Encoding"}
    encoding = choose_encoding(accept_encoding) if len(body) >= COMPRESS_FROM_BYTES else None
    if encoding is not None:
        if len(body) >= OFF_LOOP_FROM_BYTES:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(_COMPRESSORS, compress, body, encoding, False)
        else:
            body = compress(body, encoding, True)
        headers["Content-Encoding"] = encoding
    return Response(body, media_type=media_type, headers=headers)


def compress(body: bytes, encoding: str, on_loop: bool) -> bytes:
    if encoding == "zstd":
        # A compressor object is not safe to share between threads: one of its own per
        # call off the loop (it costs microseconds).
        compressor = _zstd if on_loop else zstandard.ZstdCompressor(level=1)
        return compressor.compress(body)
    return zlib.compress(body, GZIP_LEVEL, wbits=31)  # 31: with the gzip header


def choose_encoding(accept_encoding: str) -> str | None:
    """zstd if the client takes it (Chromium does: about 4 times less CPU than gzip for a
    quarter fewer bytes), else gzip, else none."""
    offered = set()
    for part in accept_encoding.lower().split(","):
        name, _, params = part.partition(";")
        quality = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
        try:
            if float(quality) > 0:
                offered.add(name.strip())
        except ValueError:
            continue
    for encoding in ("zstd", "gzip"):
        if encoding in offered:
            return encoding
    return None


class SyncController(Controller):
    path = "/api/sync"
    tags = ["sync"]

    @post(
        "/v1",
        operation_id="sync",
        request_max_body_size=MAX_BODY_BYTES,
        status_code=200,
        opt={SKIP_COMPRESSION: True},
    )
    async def sync(self, request: Request[Any, Any, Any], actor: CurrentActor) -> Response[bytes]:
        """Push the client's queued writes and pull what it has not seen, in one commit."""
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", "A sync request may be at most 4 MiB.")
        sync_request = decode_request(body, request.headers.get("content-type", ""))
        sync_request = services.for_engine(sync_request, actor)
        now_ms = int(time.time() * 1000)
        try:
            # A pull may be answered by the read replica; everything else by the primary.
            response = await services.pull_from_replica(actor, sync_request, now_ms)
            if response is None:
                response = await BATCHER.round_trip(actor, sync_request, now_ms)
        except MidGap as gap:
            raise ApiError(
                409,
                "mid_gap",
                f"Mutations must continue from mid {gap.expected}; resend from there.",
                expected=gap.expected,
            ) from None
        except OverLimit as over:
            raise over_limit_error(
                over.status, over.error, over.detail, over.retry_after_s
            ) from None
        return await encode_response(
            services.for_client(response, actor),
            request.headers.get("accept", ""),
            request.headers.get("accept-encoding", ""),
        )
