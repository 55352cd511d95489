"""Each user's calendar feed: the secret in its link, kept hashed."""

from piccolo.columns import UUID, Boolean, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class CalendarFeed(Table, tablename="calendar_feeds"):
    """One feed per user. Only the SHA-256 of the link's secret is kept: the database (or a
    backup of it) does not hand out working links; a user who lost theirs makes a new one."""

    user_id = UUID(primary_key=True)
    secret_sha256 = Varchar(length=64, unique=True)
    private = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
