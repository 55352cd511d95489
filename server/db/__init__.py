"""The database: its connections, its transactions and raw SQL with `{}` placeholders.

One database per process, chosen by DATABASE_URL: SQLite (sqlite3) or PostgreSQL
(asyncpg). Piccolo describes the tables and runs the migrations; queries at run time go
through this package, straight to the driver, because the request path is mostly small
indexed queries and a driver call is what they cost. Callers use `from server import db`
and the names below; what they rely on:

- SQL with `{}` placeholders (Piccolo's convention, `{{` for a brace): fetch() returns
  rows as dicts, fetch_rows() as sequences; UUIDs come back as strings on both engines.
- One writer. Write transactions are serialised (an asyncio lock plus BEGIN IMMEDIATE on
  SQLite, a transaction-level advisory lock on PostgreSQL), so sequence numbers handed
  out inside one are in commit order. read_transaction() sees one snapshot;
  write_transaction() holds the writer; transaction() is a plain one (a write one on
  SQLite). Inside a transaction every statement runs in it, and a transaction started
  inside another is that other one.
- Group commit: write transactions that arrive while the writer is busy run one after
  another in one database transaction, each from a savepoint of its own, and commit
  together; each returns only after that commit.
- fetch(..., slow=True) for a read whose cost the caller cannot bound (searches, lists,
  boxes of the map): on SQLite it runs in a read thread instead of on the event loop, and
  on both engines it is stopped after SLOW_READ_LIMIT_S (StatementTimeout).
- defer() holds back a write until the transaction's next statement or its commit;
  shared() is a dict that lasts as long as the database transaction.
- insert_rows(), update_rows() and any_of() handle many rows with one statement text,
  whatever their number.
- configure() chooses the database and returns Piccolo's engine for it, binding no table
  (server.tables.bind_tables does); it calls the hooks in ON_CONFIGURE first, so other
  modules drop what they kept of the previous database. Importing the package changes
  nothing outside it; configuring SQLite sets sqlite3's process-wide converters.

Which module holds what (each imports only modules above it here, and nothing from
`server` but server.settings):
- sql.py: `{}` placeholders to `$n` or `?`.
- context.py: the current transaction (a context variable), defer(), shared().
- group_commit.py: the writer's groups, and what they need of a driver.
- sqlite.py: the SQLite driver, and the converters it reads columns with.
- postgres.py: the PostgreSQL driver: the asyncpg pool, its connections' set-up (UUIDs
  as text, array types met), the writer's advisory lock, column types.
- replica.py: the streaming replica (DATABASE_REPLICA_URL) pulls may read from:
  configure_replica(), replica_read_transaction(), ReplicaUnavailable.
- setup.py: configure(), make_engine(), engine(), is_postgres(), start(), stop(),
  ON_CONFIGURE, and driver(): the driver configure() chose.
- transactions.py: fetch(), fetch_rows(), read_transaction(), write_transaction(),
  transaction(), analyze(), next_values() and raise_sequence() (a PostgreSQL sequence's, for the
  sync seqs).
- bulk.py: insert_rows(), update_rows(), any_of(), padded().
- side.py: the side connection, one per process outside the pool: side_fetch() (a
  statement outside any transaction, for idle sync polls) and listen() (PostgreSQL's
  LISTEN/NOTIFY); SideUnavailable when it is not there.
- reclaim() (transactions.py): the space deleted rows took given back, no byte of them
  left in the files (SQLite: secure_delete on every writing connection, then a checkpoint
  that empties the log; PostgreSQL: the tables rewritten).
"""

from server.db.bulk import any_of, insert_rows, padded, update_rows
from server.db.context import SLOW_READ_LIMIT_S, StatementTimeout, at_commit, defer, shared
from server.db.postgres import WRITE_LOCK_KEY
from server.db.replica import (
    ReplicaUnavailable,
    configure_replica,
    has_replica,
    replica_read_transaction,
)
from server.db.setup import (
    ON_CONFIGURE,
    configure,
    engine,
    is_postgres,
    make_engine,
    start,
    stop,
)
from server.db.side import SideUnavailable
from server.db.sqlite import SQLITE_BUSY_TIMEOUT_S, SQLITE_IDLE_READERS, SQLITE_READ_THREADS
from server.db.transactions import (
    analyze,
    fetch,
    fetch_rows,
    listen,
    next_values,
    raise_sequence,
    read_transaction,
    reclaim,
    side_fetch,
    transaction,
    write_transaction,
)

__all__ = [
    "analyze",
    "ON_CONFIGURE",
    "ReplicaUnavailable",
    "SQLITE_BUSY_TIMEOUT_S",
    "SLOW_READ_LIMIT_S",
    "SQLITE_IDLE_READERS",
    "SQLITE_READ_THREADS",
    "SideUnavailable",
    "StatementTimeout",
    "WRITE_LOCK_KEY",
    "any_of",
    "at_commit",
    "configure",
    "configure_replica",
    "defer",
    "engine",
    "fetch",
    "fetch_rows",
    "has_replica",
    "insert_rows",
    "is_postgres",
    "listen",
    "make_engine",
    "next_values",
    "raise_sequence",
    "padded",
    "read_transaction",
    "reclaim",
    "replica_read_transaction",
    "shared",
    "side_fetch",
    "start",
    "stop",
    "transaction",
    "update_rows",
    "write_transaction",
]
