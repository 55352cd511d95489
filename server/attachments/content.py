"""Whether bytes are what their type claims (SPEC section 13): images are opened and
verified by Pillow (docs/decisions/2026-12-06-obstore.md says why Pillow), sounds are
known by the first bytes of their container."""

from __future__ import annotations

import warnings
from typing import IO

from PIL import Image

# Pillow's name for each image type we take.
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# A phone's photo is at most 1,600 px a side; a camera's up to about 50 megapixels.
MAX_PIXELS = 100_000_000
HEAD_BYTES = 64


class WrongContent(ValueError):
    """The bytes are not of the type claimed; the message says what was found."""


def check(media_type: str, data: IO[bytes]) -> None:
    """Raise WrongContent unless `data` (a file at its start) holds a `media_type`.
    Reads the whole image (Pillow's verify) or the container's first bytes."""
    if media_type in IMAGE_FORMATS:
        _check_image(media_type, data)
    else:
        _check_sound(media_type, data.read(HEAD_BYTES))


def _check_image(media_type: str, data: IO[bytes]) -> None:
    expected = IMAGE_FORMATS[media_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(data, formats=list(IMAGE_FORMATS.values())) as image:
                found = image.format
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise WrongContent(f"The image is {width}x{height}: too many pixels.")
                image.verify()
    except WrongContent:
        raise
    except Exception:  # Pillow raises many kinds for broken or foreign bytes
        raise WrongContent(f"These bytes are not a readable {media_type} image.") from None
    if found != expected:
        raise WrongContent(f"These bytes are a {found} image, not {media_type}.")


def _is_mpeg_audio(head: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame's sync word (11 bits set) with a valid layer."""
    if head[:3] == b"ID3":
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


def _check_sound(media_type: str, head: bytes) -> None:
    if media_type == "audio/webm":
        # An EBML header whose DocType is webm (Matroska's own is "matroska").
        ok = head[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in head
    elif media_type == "audio/mp4":
        ok = head[4:8] == b"ftyp"  # an ISO base media file: its first box is `ftyp`
    elif media_type == "audio/ogg":
        ok = head[:4] == b"OggS"
    elif media_type == "audio/mpeg":
        ok = _is_mpeg_audio(head)
    else:
        raise WrongContent(f"{media_type} is not a type of attachment.")
    if not ok:
        raise WrongContent(f"These bytes do not start as {media_type} does.")
