"""The CRM's records. Each row also carries what sync needs: its last change `seq`,
the `scope` that decides who sees it, a tombstone flag and the per-field clocks."""

from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    Date,
    DoublePrecision,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class SyncedRecord(Table):
    id = UUID(primary_key=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    seq = BigInt(default=0)
    scope = Varchar(length=60, index=True)
    deleted = Boolean(default=False)
    # {"field": [ms, counter, client_id, user_id, seq]}: who set each field, when, at which seq.
    clocks = Text(default="{}")


class Account(SyncedRecord, tablename="accounts"):
    # Queries by scope use the list and nearby indexes, which start with it.
    scope = Varchar(length=60)
    name = Varchar(length=200)
    status = Varchar(length=20, default="prospect")
    phone = Varchar(length=50, null=True, default=None)
    email = Varchar(length=254, null=True, default=None)
    website = Varchar(length=500, null=True, default=None)
    street = Varchar(length=200, null=True, default=None)
    city = Varchar(length=100, null=True, default=None)
    region = Varchar(length=100, null=True, default=None)
    postal_code = Varchar(length=20, null=True, default=None)
    country = Varchar(length=100, null=True, default=None)
    lat = DoublePrecision(null=True, default=None)
    lng = DoublePrecision(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    team_id = UUID(null=True, default=None)
    geo_precision = Varchar(length=20, null=True, default=None)
    created_by = UUID(null=True, default=None)
    last_visit_at = Timestamptz(null=True, default=None)
    phone_e164 = Varchar(length=20, null=True, default=None)


class Contact(SyncedRecord, tablename="contacts"):
    account_id = UUID(index=True)
    name = Varchar(length=200)
    title = Varchar(length=200, null=True, default=None)
    phone = Varchar(length=50, null=True, default=None)
    email = Varchar(length=254, null=True, default=None)


class Visit(SyncedRecord, tablename="visits"):
    # Queries by scope use the report's index, which starts with it.
    scope = Varchar(length=60)
    account_id = UUID(index=True)
    started_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    lat = DoublePrecision(null=True, default=None)
    lng = DoublePrecision(null=True, default=None)
    accuracy_m = DoublePrecision(null=True, default=None)
    outcome = Varchar(length=20, null=True, default=None)
    summary = Text(null=True, default=None)
    user_id = UUID(null=True, default=None, index=True)
    distance_m = DoublePrecision(null=True, default=None)
    verification = Varchar(length=20, default="unverified")


class Note(SyncedRecord, tablename="notes"):
    # Queries by scope use the report's index, which starts with it.
    scope = Varchar(length=60)
    account_id = UUID(index=True)
    body = Text()
    visit_id = UUID(null=True, default=None)
    author_id = UUID(null=True, default=None)


class Task(SyncedRecord, tablename="tasks"):
    # Queries by scope use tasks_list and tasks_report, which start with it.
    scope = Varchar(length=60)
    title = Varchar(length=200)
    account_id = UUID(null=True, default=None, index=True)
    due_at = Timestamptz(null=True, default=None)
    remind_at = Timestamptz(null=True, default=None, index=True)
    done = Boolean(default=False)
    assignee_id = UUID(null=True, default=None, index=True)
    author_id = UUID(null=True, default=None)
    reminded_at = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None)
    kind = Varchar(length=10, default="todo")  # todo | visit (a planned visit)


class Deal(SyncedRecord, tablename="deals"):
    # Queries by scope use the report's index, which starts with it.
    scope = Varchar(length=60)
    account_id = UUID(index=True)
    title = Varchar(length=200)
    stage = Varchar(length=20, default="lead")
    amount = DoublePrecision(null=True, default=None)
    currency = Varchar(length=3, null=True, default=None)
    close_date = Date(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    stage_changed_at = Timestamptz(null=True, default=None)


class Attachment(SyncedRecord, tablename="attachments"):
    """A photo or a voice note on a visit, a note or an account (SPEC section 13). The row
    syncs like any record; its bytes are kept apart (server/attachments/), by SHA-256."""

    # Queries by scope use the list index, which starts with it.
    scope = Varchar(length=60)
    sha256 = Varchar(length=64, index=True)
    media_type = Varchar(length=40)
    bytes = BigInt()
    visit_id = UUID(null=True, default=None)
    note_id = UUID(null=True, default=None)
    # Never null once stored (the visit's or the note's account when the phone names none).
    account_id = UUID(null=True, default=None, index=True)
    caption = Text(null=True, default=None)
    captured_at = Timestamptz(null=True, default=None)
    lat = DoublePrecision(null=True, default=None)
    lng = DoublePrecision(null=True, default=None)
    author_id = UUID(null=True, default=None)
    uploaded = Boolean(default=False)


class Conflict(SyncedRecord, tablename="conflicts"):
    """A value that lost (or was overwritten) in a merge, kept so nobody's work vanishes."""

    record_table = Varchar(length=20)
    record_id = UUID(index=True)
    account_id = UUID(null=True, default=None, index=True)
    field = Varchar(length=50)
    kept_value = Text(null=True, default=None)  # JSON
    lost_value = Text(null=True, default=None)  # JSON
    kept_hlc = Varchar(length=60)  # JSON [ms, counter]
    lost_hlc = Varchar(length=60)
    kept_by = UUID(null=True, default=None)
    lost_by = UUID(null=True, default=None)
    resolved = Boolean(default=False)


class Rejection(SyncedRecord, tablename="rejections"):
    """A phone's write the server refused, kept whole (SPEC 4 rule 12): it syncs to its
    writer and to the managers of the writer's team, who can fix it and send it again."""

    record_table = Varchar(length=20)
    record_id = Varchar(length=60)  # as the phone sent it: not always a valid UUID
    op = Varchar(length=10)
    fields = Text(default="{}")  # JSON: the write's fields, whole
    error = Varchar(length=40)
    detail = Text(default="")
    user_id = UUID(index=True)
    client_id = Varchar(length=100)
    mid = BigInt(default=0)
    account_id = UUID(null=True, default=None, index=True)
    resolved = Boolean(default=False)


class ScopeMove(Table, tablename="scope_moves"):
    """When a record left a scope (an account moved to another team): a write made in the
    old scope before the move is still applied within MOVE_GRACE (SPEC 4 rule 11)."""

    record_table = Varchar(length=20)
    record_id = UUID(index=True)
    from_scope = Varchar(length=60)
    to_scope = Varchar(length=60)
    moved_at_ms = BigInt()
    seq = BigInt()


class MergedRecord(Table, tablename="merged_records"):
    """A record merged into another (SPEC section 9, rule 13): while the merge stands, a
    write to it lands on `survivor_id` and its delete reaches devices with `merged_into`.
    Undoing the merge removes the row."""

    record_id = UUID(primary_key=True)  # merged once while the merge stands
    record_table = Varchar(length=20)
    survivor_id = UUID()
    merge_id = UUID(index=True)


class WriteBudget(Table, tablename="write_budgets"):
    """A writer's budget for the write rate limit (server/core/limits.py): when their token
    bucket is full again, in microseconds since the epoch."""

    user_id = UUID(primary_key=True)
    full_at_us = BigInt()


class ScopeUsageRow(Table, tablename="scope_usage"):
    """How many live records a scope holds (not counting conflicts and rejections), for the
    team storage quota (server/core/limits.py); kept by the session's writes."""

    scope = Varchar(length=60, primary_key=True)
    records = BigInt()


class HistoryEntry(Table, tablename="history"):
    """One applied change to a record (SPEC section 11; server/core/history.py): kept
    after the record is deleted. `fields`: {"field": {"old": ..., "new": ...}} as canonical
    JSON; `prev_hash`/`hash`: the record's hash chain (docs/history.md)."""

    seq = BigInt(primary_key=True)
    record_table = Varchar(length=20)
    record_id = UUID()  # indexed with seq (its migration of 2026-12-22T09:00)
    at = Timestamptz()
    user_id = UUID(null=True, default=None)
    client_id = Text()
    source = Varchar(length=20)
    op = Varchar(length=10)
    fields = Text()
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)


class OrgSetting(Table, tablename="org_settings"):
    """The organisation's settings that an admin changes at run time (server/core/automation.py:
    the built-in rules' switches), one JSON value per key."""

    key = Varchar(length=60, primary_key=True)
    value = Text()
    updated_at = Timestamptz(null=True, default=None)
    updated_by = UUID(null=True, default=None)


class Erasure(Table, tablename="erasures"):
    """An erasure on request (SPEC section 12; server/core/erasure.py): that a record and
    what hung off it were erased, when and by whom, and nothing of their values. `reclaimed_at`
    is set once the engine has given back the space their bytes took (a SQLite checkpoint,
    a PostgreSQL rewrite): until then a background job finishes it (docs/privacy.md)."""

    id = UUID(primary_key=True)
    record_table = Varchar(length=20)
    record_id = UUID(unique=True)
    erased_at = Timestamptz()
    erased_by = UUID(null=True, default=None)
    records = BigInt(default=0)  # how many rows were erased with it (its children, ...)
    tables = Text(default="[]")  # JSON: the tables whose space is to be reclaimed
    # JSON: the hashes of the erased attachments whose bytes are still to be deleted from
    # the blob store (emptied once they are)
    blobs = Text(default="[]")
    reclaimed_at = Timestamptz(null=True, default=None)


class ErasedRecord(Table, tablename="erased_records"):
    """Each id an erasure took (the record, what hung off it, their conflicts and refused
    writes): a later write to one of them is refused (`erased`) and kept nowhere."""

    record_id = UUID(primary_key=True)
    record_table = Varchar(length=20)
    erasure_id = UUID(index=True)


class HistoryCut(Table, tablename="history_cuts"):
    """Where the retention job cut a record's history chain (docs/history.md): the seq and
    hash of the newest entry it removed, so that `verify-history` knows the chain's first
    remaining entry was not cut by a hand."""

    record_id = UUID(primary_key=True)
    record_table = Varchar(length=20)
    seq = BigInt()
    hash = Varchar(length=64)
    cut_at = Timestamptz()
