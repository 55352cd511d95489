"""What the blob store holds: one row per attachment's bytes, by SHA-256."""

from piccolo.columns import BigInt, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AttachmentBlob(Table, tablename="attachment_blobs"):
    """Bytes the server holds (server/blobs.py has them). Written in the same
    write transaction that marks the rows with that hash `uploaded`, so a row made later
    knows it at once (server/core/rules.py, `blob_held`). The type is what the bytes were
    found to be, served with them."""

    sha256 = Varchar(length=64, primary_key=True)
    media_type = Varchar(length=40)
    bytes = BigInt()
    stored_at = Timestamptz(default=TimestamptzNow())
