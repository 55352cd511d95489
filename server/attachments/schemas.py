"""What the attachments' blob endpoints answer."""

from __future__ import annotations

import msgspec


class BlobOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The server holds these bytes (201: stored now; 200: held already)."""

    sha256: str
    media_type: str
    bytes: int
    stored: bool  # true when this upload stored them
