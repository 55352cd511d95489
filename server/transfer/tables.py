"""The import log (SPEC section 8): each import, and what it did to each record, so that
it can show its progress and be reverted."""

from piccolo.columns import UUID, BigInt, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Import(Table, tablename="imports"):
    """One import: who ran it, of which table, how far it got and what it found."""

    id = UUID(primary_key=True)
    record_table = Varchar(length=20)
    user_id = UUID()
    team_id = UUID(null=True, default=None, index=True)
    state = Varchar(length=20, default="running")  # running | done | failed | reverted
    dry_run = Boolean(default=False)  # a dry run in the background: its report, nothing else
    rows = Integer(default=0)
    written = Integer(default=0)  # rows handled so far (progress)
    created = Integer(default=0)
    updated = Integer(default=0)
    duplicates = Integer(default=0)
    report = Text(default="{}")  # JSON: errors, unknown and ignored columns
    reverted = Text(default="{}")  # JSON: what a revert left in place, and why
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    heartbeat_at = Timestamptz(null=True, default=None)  # its job's last step (see STALE_S)


class ImportItem(Table, tablename="import_items"):
    """A record an import created or filled: which fields, and the seq its write got (a
    field whose stamp still carries that seq has not been changed since)."""

    import_id = UUID(index=True)
    record_id = UUID()
    action = Varchar(length=10)  # created | updated
    fields = Text(default="[]")  # JSON: the fields an update filled
    seq = BigInt(default=0)
    geocode = Boolean(default=False)  # an account without a position: the geocoder's work
