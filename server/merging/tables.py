"""The merge log (SPEC section 9): each merge, and what it did to each record, so that
it can be undone."""

from piccolo.columns import UUID, BigInt, Boolean, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Merge(Table, tablename="merges"):
    """One merge: who made it, of which records into which, and when it was undone."""

    id = UUID(primary_key=True)
    record_table = Varchar(length=20)
    survivor_id = UUID(index=True)
    merged_ids = Text()  # JSON: the merged records' ids, in the order given
    fields = Text(default="{}")  # JSON: field -> the id whose value won, as asked
    user_id = UUID()
    created_at = Timestamptz(default=TimestamptzNow())
    undone_at = Timestamptz(null=True, default=None)
    undone_by = UUID(null=True, default=None)
    # A merge runs in batches (docs/merge.md): `running` until its last batch merges the
    # records away; `undoing` while an undo puts back what it moved, `undo_cursor` the last
    # merge item put back.
    running = Boolean(default=False)
    undoing = Boolean(default=False)
    undo_cursor = BigInt(default=0)


class MergeItem(Table, tablename="merge_items"):
    """What a merge did to one record: `moved` it from a merged record (`from_id`) to the
    survivor, `filled` the survivor's `fields` (their values before, as JSON), or `merged`
    it away. `seq`: the seq its write got (a field whose stamp still carries it has not been
    changed since; 0 for a conflicts or rejections row, which carry no one's stamps)."""

    merge_id = UUID(index=True)
    record_table = Varchar(length=20)
    record_id = UUID()
    kind = Varchar(length=10)  # moved | filled | merged
    from_id = UUID(null=True, default=None)
    fields = Text(default="{}")
    seq = BigInt(default=0)
