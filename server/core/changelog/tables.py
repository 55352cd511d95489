"""What the sync engine keeps beside the records."""

from piccolo.columns import UUID, BigInt, Integer, Serial, Text, Varchar
from piccolo.table import Table


class SyncChange(Table, tablename="sync_changes"):
    """The change log the cursor walks: one row per record at its newest seq (op put or
    delete), plus one `evict` row per scope a record has left."""

    seq = BigInt(primary_key=True)
    record_table = Varchar(length=20)
    record_id = UUID()
    scope = Varchar(length=60)
    op = Varchar(length=10)
    # The scope's domain (a team's hex, '' for no team's): each domain's entries are in
    # commit order by seq (docs/sync-protocol.md, "Writers per team").
    domain = Varchar(length=32, default="")


class SyncClient(Table, tablename="sync_clients"):
    """Per (user, client_id): the last mutation id applied (exactly-once), and the device
    report of SPEC 4 rule 14: when it last synced, what it last said of itself, and how
    many of its writes the server applied."""

    id = Serial(primary_key=True)
    user_id = UUID()
    client_id = Varchar(length=64)
    last_mid = BigInt(default=0)
    last_sync_ms = BigInt(null=True, default=None)  # the server's time, unix ms
    device = Text(null=True, default=None)  # JSON: the last `device` object, as cleaned
    writes = BigInt(default=0)  # mutations applied or merged (not rejected, not replayed)


class SyncResult(Table, tablename="sync_results"):
    """The stored result of each applied mid, answered again on replay."""

    id = Serial(primary_key=True)
    user_id = UUID()
    client_id = Varchar(length=64)
    mid = BigInt()
    result = Text()


class SyncCounter(Table, tablename="sync_counters"):
    """Per domain (a team's hex, '' for scopes that are no team's), the newest seq
    committed in it: what a pull's cursor moves to for that domain. On PostgreSQL the
    seqs themselves come from the sequence `sync_seq`; SQLite has one domain and keeps its
    counter in sync_meta."""

    domain = Varchar(length=32, primary_key=True)
    seq = BigInt(default=0)


class SyncMeta(Table, tablename="sync_meta"):
    """Counters and identity: `seq` (the last handed out), `epoch` (this database's
    identity in cursors), `purged_seq` (tombstones older than this are gone),
    `hlc_ms`/`hlc_counter` (the highest clock seen)."""

    key = Varchar(length=40, primary_key=True)
    value = Text()
    version = Integer(default=0)
