"""Attachments' bytes (SPEC section 13): upload them, read them. The rows themselves are
records (GET/POST/PATCH/DELETE /api/attachments, and sync)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, put
from litestar.params import FromPath
from litestar.response import Stream

from server.attachments import services
from server.attachments.schemas import BlobOut
from server.auth.dependencies import CurrentActor
from server.core.fields import ATTACHMENT_MAX_BYTES
from server.errors import ApiError

# The app's gzip leaves these alone (server/app.py's exclude_opt_key): photos and sounds
# are compressed already.
SKIP_COMPRESSION = "skip_compression"
# Bytes never change under their hash: a year, and no need to ask again.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def _content_length(request: Request[Any, Any, Any]) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise ApiError(400, "malformed", "Content-Length must be a number of bytes.")
    return int(value)


class AttachmentBlobsController(Controller):
    path = "/api/attachments/blobs"
    tags = ["attachments"]

    @put(
        "/{sha256:str}",
        operation_id="upload_attachment_bytes",
        # One more than the largest, so that our own check answers, with our sentence.
        request_max_body_size=ATTACHMENT_MAX_BYTES + 1,
    )
    async def upload(
        self, actor: CurrentActor, request: Request[Any, Any, Any], sha256: FromPath[str]
    ) -> Response[BlobOut]:
        """Send an attachment's bytes, named by their SHA-256 (201 stored, 200 held)."""
        status, held = await services.upload(
            actor,
            sha256,
            request.headers.get("content-type"),
            _content_length(request),
            request.stream(),
        )
        return Response(held, status_code=status)

    @get("/{sha256:str}", operation_id="read_attachment_bytes", opt={SKIP_COMPRESSION: True})
    async def read(
        self, actor: CurrentActor, request: Request[Any, Any, Any], sha256: FromPath[str]
    ) -> Response[Any]:
        """The bytes, to a user who sees an attachment with this hash."""
        etag = f'"{sha256}"'
        media_type, size, chunks = await services.open_blob(actor, sha256)
        headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            await chunks.aclose()
            return Response(b"", status_code=304, headers=headers)
        headers["Content-Length"] = str(size)
        return Stream(chunks, media_type=media_type, headers=headers)
