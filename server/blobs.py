"""Where attachments' bytes are kept: a local folder or an S3-compatible bucket, through
one API (obstore: docs/decisions/2026-12-06-obstore.md).

`FIELDCRM_BLOB_URL` chooses: `file://PATH` (a folder, made if missing; a relative path is
taken from where the server starts) or `s3://BUCKET/PREFIX`, whose credentials, region and
endpoint obstore reads from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_REGION,
AWS_ENDPOINT_URL, AWS_ALLOW_HTTP ...). Bytes are kept under `sha256/ab/abcdef...`: named
by their content, so a key is written with the same bytes whoever writes it, and a put
is atomic on both (a local file is written aside and renamed into place).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import IO

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, ObjectStore, S3Store


def open_store(url: str) -> ObjectStore:
    """The store `url` names (settings.parse_blob_url has checked its form)."""
    scheme, _, rest = url.partition("://")
    if scheme == "file":
        return LocalStore(prefix=Path(rest).resolve(), mkdir=True)
    bucket, _, prefix = rest.partition("/")
    return S3Store(bucket, prefix=prefix.strip("/") or None)


_current: list[ObjectStore | None] = [None]
_url: list[str] = [""]


def configure(url: str) -> None:
    """Use the store at `url` from now on (the app calls this once, at start). It is
    opened when first used: a server that never sees an attachment makes no folder."""
    _current[0], _url[0] = None, url


def store() -> ObjectStore:
    current = _current[0]
    if current is None:
        if not _url[0]:
            raise RuntimeError("the blob store is not configured (server.blobs)")
        current = _current[0] = open_store(_url[0])
    return current


def key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


async def put(sha256: str, data: IO[bytes]) -> None:
    """Keep `data` (a file positioned at its start) as the bytes of `sha256`."""
    await obstore.put_async(store(), key(sha256), data)


async def exists(sha256: str) -> bool:
    try:
        await obstore.head_async(store(), key(sha256))
    except (NotFoundError, FileNotFoundError):
        return False
    return True


async def read(sha256: str, chunk_bytes: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
    """The bytes of `sha256`, in chunks; FileNotFoundError if the store has none."""
    try:
        result = await obstore.get_async(store(), key(sha256))
    except (NotFoundError, FileNotFoundError):
        raise FileNotFoundError(sha256) from None
    async for chunk in result.stream(min_chunk_size=chunk_bytes):
        yield bytes(chunk)


async def delete(sha256: str) -> None:
    """Drop the bytes of `sha256` (nothing happens if there are none)."""
    try:
        await obstore.delete_async(store(), key(sha256))
    except (NotFoundError, FileNotFoundError):
        pass
