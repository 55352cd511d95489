"""Attachments' bytes (SPEC section 13): uploads checked for size, hash and content,
stored once whoever sends them and however often, and served only to the users who see
an attachment row with their hash.

An upload names bytes some attachment row names already: the row (synced first) says
what the bytes are and where they belong, and only who sees that row may send them. The
bytes go to the blob store (storage.py) first, then, in one write transaction of the one
writer, `attachment_blobs` gets their row and every attachment row with that hash becomes
`uploaded` (a change that reaches every phone that sees it).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import IO, Any

from server import blobs as storage
from server import db
from server.attachments import content
from server.attachments.schemas import BlobOut
from server.core.actor import SYSTEM, Actor, scope_filter
from server.core.fields import ATTACHMENT_MAX_BYTES, ATTACHMENT_TYPES, SHA256
from server.core.writer import Edit, Source, writing
from server.errors import ApiError

SPOOL_BYTES = 1024 * 1024  # an upload past this waits in a temporary file, not in memory
# One upload of given bytes at a time in this process: a second one sent at once waits,
# then finds them held (across processes, the writer's lock decides who stores them).
_locks: dict[str, asyncio.Lock] = {}
_waiting: dict[str, int] = {}


def media_type_of(content_type: str | None) -> str:
    """The upload's type, from its Content-Type (parameters such as codecs set aside);
    415 unless it is a type of attachment."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in ATTACHMENT_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send the bytes as one of {', '.join(ATTACHMENT_TYPES)}.",
        )
    return media_type


def _hash(sha256: str, status: int) -> str:
    if not SHA256.fullmatch(sha256):
        raise ApiError(
            status,
            "malformed" if status == 400 else "not_found",
            "Name the bytes by their SHA-256, as 64 lowercase hex digits.",
        )
    return sha256


async def _named_types(actor: Actor, sha256: str) -> set[str]:
    """The media types the live attachment rows `actor` sees give these bytes."""
    sql = "SELECT DISTINCT media_type FROM attachments WHERE sha256 = {} AND deleted = {}"
    args: list[Any] = [sha256, False]
    if actor.scopes is not None:
        where, scope_args = scope_filter(actor.scopes)
        sql += f" AND {where}"
        args += scope_args
    return {str(row["media_type"]) for row in await db.fetch(sql, *args)}


async def _held(sha256: str) -> dict[str, Any] | None:
    rows = await db.fetch(
        "SELECT media_type, bytes FROM attachment_blobs WHERE sha256 = {}", sha256
    )
    return rows[0] if rows else None


@contextmanager
def _spool() -> Iterator[IO[bytes]]:
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as data:
        yield data


async def upload(
    actor: Actor,
    sha256: str,
    content_type: str | None,
    content_length: int | None,
    chunks: AsyncIterator[bytes],
) -> tuple[int, BlobOut]:
    """Take the bytes of an attachment; (201 or 200, what is held). Raises ApiError: 400
    (not a hash), 404 (no attachment the caller sees names it), 413 (over 10 MiB), 415
    (not a type of attachment), 422 (wrong hash, wrong content, not the row's type)."""
    sha256 = _hash(sha256, 400)
    media_type = media_type_of(content_type)
    if content_length is not None and content_length > ATTACHMENT_MAX_BYTES:
        raise _too_large()
    named = await _named_types(actor, sha256)
    if not named:
        raise ApiError(
            404,
            "not_found",
            "No attachment you can see names these bytes: sync its row first, then send them.",
        )
    if media_type not in named:
        raise ApiError(
            422,
            "type_mismatch",
            f"The attachment says {' or '.join(sorted(named))}; these were sent as {media_type}.",
        )
    with _spool() as data:
        digest = hashlib.sha256()
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > ATTACHMENT_MAX_BYTES:
                raise _too_large()
            digest.update(chunk)
            data.write(chunk)
        if digest.hexdigest() != sha256:
            raise ApiError(
                422,
                "hash_mismatch",
                f"These {size} bytes have the SHA-256 {digest.hexdigest()}, not the one named.",
            )
        data.seek(0)
        try:
            # Pillow reads the whole image: off the event loop.
            await asyncio.to_thread(content.check, media_type, data)
        except content.WrongContent as wrong:
            raise ApiError(422, "wrong_content", str(wrong)) from None
        data.seek(0)
        async with _one_at_a_time(sha256):
            stored = await _store(sha256, media_type, size, data)
    return (201 if stored else 200), BlobOut(
        sha256=sha256, media_type=media_type, bytes=size, stored=stored
    )


def _too_large() -> ApiError:
    return ApiError(
        413, "too_large", f"An attachment is at most {ATTACHMENT_MAX_BYTES // 2**20} MiB."
    )


class _one_at_a_time:
    """The process's lock for one hash, dropped when nobody waits on it."""

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256

    async def __aenter__(self) -> None:
        _waiting[self.sha256] = _waiting.get(self.sha256, 0) + 1
        await _locks.setdefault(self.sha256, asyncio.Lock()).acquire()

    async def __aexit__(self, *_: object) -> None:
        _locks[self.sha256].release()
        _waiting[self.sha256] -= 1
        if not _waiting[self.sha256]:
            del _waiting[self.sha256], _locks[self.sha256]


async def _store(sha256: str, media_type: str, size: int, data: IO[bytes]) -> bool:
    """Keep the bytes unless held; whether this call stored them."""
    if await _held(sha256) is not None:
        return False
    if not await storage.exists(sha256):
        await storage.put(sha256, data)
    async with writing(Source.UPLOAD) as writer:
        if await _held(sha256) is not None:
            return False  # another server process recorded them meanwhile
        await db.fetch(
            "INSERT INTO attachment_blobs (sha256, media_type, bytes, stored_at)"
            " VALUES ({}, {}, {}, CURRENT_TIMESTAMP)",
            sha256,
            media_type,
            size,
        )
        rows = await db.fetch(
            "SELECT id FROM attachments WHERE sha256 = {} AND uploaded = {} AND deleted = {}",
            sha256,
            False,
            False,
        )
        for row in rows:
            await writer.apply(SYSTEM, Edit("attachments", str(row["id"]), {"uploaded": True}))
    return True


async def open_blob(actor: Actor, sha256: str) -> tuple[str, int, AsyncGenerator[bytes, None]]:
    """The bytes for a user who sees an attachment row with their hash: (type, size,
    chunks). 404 otherwise, or while the bytes have not arrived."""
    sha256 = _hash(sha256, 404)
    if not await _named_types(actor, sha256):
        raise ApiError(404, "not_found", "No attachment you can see has these bytes.")
    held = await _held(sha256)
    if held is None:
        raise ApiError(404, "not_uploaded", "These bytes have not reached the server yet.")
    chunks = storage.read(sha256)
    try:
        first = await anext(chunks)
    except (FileNotFoundError, StopAsyncIteration):
        raise ApiError(404, "not_found", "These bytes are no longer kept.") from None

    async def whole() -> AsyncGenerator[bytes, None]:
        yield first
        async for chunk in chunks:
            yield chunk

    return str(held["media_type"]), int(held["bytes"]), whole()
