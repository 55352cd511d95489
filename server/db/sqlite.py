"""SQLite: a few long-lived `sqlite3` connections.

Statements run on the event loop thread (an indexed read takes microseconds, less than
handing it to a thread would); what may wait, BEGIN IMMEDIATE (another process may hold
the lock) and COMMIT (it syncs the log to disk), runs in a worker thread. A read whose
cost the caller cannot bound (a search, a list at any offset, a nearby box, anything that
is not a lookup by key or a page of an index) says so, fetch(..., slow=True), and runs in
a thread of its own pool (SQLITE_READ_THREADS, apart from BEGIN/COMMIT's), stopped by a
progress handler once it has run SLOW_READ_LIMIT_S (StatementTimeout), or at once if its
caller is cancelled: the loop, and every other request on it, never waits for it. Readers are
`query_only`: a write outside a write transaction is an error, not a second writer
waiting on the first. The one writer is an asyncio lock (group_commit.py) plus BEGIN
IMMEDIATE. WAL mode with synchronous = FULL: a commit is on disk before it returns.

Columns are read through sqlite3's converters, by declared type: UUIDs as strings,
INTEGERs as SQLite has them, BOOLEANs as bools, TIMESTAMPTZs as aware datetimes. sqlite3
keeps those converters for the whole process: use_our_converters() sets them, once a
SQLite database is configured (setup.py); nothing here does anything on import.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

# Importing Piccolo's SQLite engine registers its sqlite3 adapters (UUID, datetime, Decimal
# and list parameters; our connections use them too) and converters, process-wide. Being
# imported here, it has done so before use_our_converters() can run.
import piccolo.engine.sqlite  # noqa: F401

from server.db.context import (
    SLOW_READ_LIMIT_S,
    StatementTimeout,
    Transaction,
    current_connection,
    current_while,
)
from server.db.group_commit import Groups
from server.db.side import SqliteSide
from server.db.sql import compile_sql, is_read

SQLITE_BUSY_TIMEOUT_S = 30  # how long BEGIN IMMEDIATE waits for another process's writer
SQLITE_IDLE_READERS = 8  # connections kept open for readers
# Threads for slow reads (fetch(..., slow=True)); more wait their turn. Few: each holds
# the GIL only between SQLite's steps, and the machine has few cores.
SQLITE_READ_THREADS = 4
# The progress handler checks the time limit every this many virtual machine steps
# (tens of microseconds).
PROGRESS_STEPS = 10_000
# insert_rows() and update_rows() send at most this many rows in one statement (fewer when
# the rows have so many columns that they would pass SQLite's limit of bound parameters).
MAX_ROWS_PER_STATEMENT = 256
# Prepared statements each writer connection keeps, by text (sqlite3's default is 128):
# the multi-row statements come in a few sizes per table and set of columns.
WRITER_STATEMENT_CACHE = 512

T = TypeVar("T")


# reclaim(): how many times a checkpoint that readers held up is tried again, 0.1 s apart
# (each try also waits up to SQLITE_BUSY_TIMEOUT_S in SQLite's busy handler).
RECLAIM_TRIES = 50


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def use_our_converters() -> None:
    """Have sqlite3 read UUID, BOOLEAN, TIMESTAMPTZ and INTEGER columns our way.

    Piccolo's converters make a uuid.UUID of every UUID, parse every INTEGER through
    Decimal and check types at each call; the records' hot paths (sync pulls, lists) then
    spent most of their time there. Ours: UUIDs as strings (as the rest of fieldcrm uses
    them, and as postgres.py has asyncpg give them), INTEGERs as SQLite has them,
    timestamps and booleans as Piccolo reads them.

    The database layer's one effect outside itself, made when a SQLite database is
    configured (never on import): sqlite3 keeps converters in one dict for the whole
    process, by declared column type, and tells Python nothing else of a column's declared
    type, so a connection cannot have converters of its own, and converting rows here
    instead would mean guessing types from column names. Piccolo's SQLite engine in this
    process (the migrations) then reads those columns our way too; it works either way.
    Calling it again changes nothing."""
    sqlite3.converters.pop("INTEGER", None)
    sqlite3.register_converter("UUID", bytes.decode)
    sqlite3.register_converter("BOOLEAN", b"1".__eq__)
    sqlite3.register_converter("TIMESTAMPTZ", _timestamptz)


def _timestamptz(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode()).replace(tzinfo=UTC)


async def in_thread(executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in a worker thread; if the caller is cancelled meanwhile, wait for the thread
    to finish before handing on the cancellation (the connection is not free until then)."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class SQLite:
    def __init__(self, path: str) -> None:
        self.path = path
        self._readers: list[sqlite3.Connection] = []
        self._writers: list[sqlite3.Connection] = []
        # BEGIN IMMEDIATE and COMMIT get threads of their own: in the loop's default
        # executor they would queue behind blocking work such as push sends.
        self._executor: ThreadPoolExecutor | None = None
        self._read_executor: ThreadPoolExecutor | None = None  # slow reads
        self.groups = Groups(self)
        self.side = SqliteSide(lambda: self.connect(query_only=True))

    def connect(self, *, query_only: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=SQLITE_BUSY_TIMEOUT_S,
            detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
            isolation_level=None,  # we say BEGIN and COMMIT ourselves
            check_same_thread=False,  # used by one task at a time, COMMIT from a thread
            cached_statements=128 if query_only else WRITER_STATEMENT_CACHE,
        )
        conn.execute("PRAGMA foreign_keys = ON")
        # In WAL mode FULL syncs the log on every commit: an acknowledged write survives a
        # power cut.
        conn.execute("PRAGMA synchronous = FULL")
        # A group commit's members run in savepoints, whose undo journal is a temporary
        # file unless kept in memory (it only ever holds one request's pages).
        conn.execute("PRAGMA temp_store = MEMORY")
        if query_only:
            conn.execute("PRAGMA query_only = ON")
        else:
            # What a write deletes or replaces is overwritten with zeros, not left in the
            # page's free space or on the free list: an erased value (SPEC section 12) is
            # gone from the file once the log is checkpointed (reclaim()).
            conn.execute("PRAGMA secure_delete = ON")
        return conn

    async def start(self) -> None:
        conn = self.connect(query_only=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()

    async def stop(self) -> None:
        await self.side.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._read_executor is not None:
            self._read_executor.shutdown(wait=True)
            self._read_executor = None
        for conn in self._readers + self._writers:
            conn.close()
        self._readers.clear()
        self._writers.clear()

    def _threads(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite")
        return self._executor

    @staticmethod
    def run(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor = conn.execute(compile_sql(sql, False), args)
        rows = cursor.fetchall()
        if not rows:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def run_slow(
        self, conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]
    ) -> list[dict[str, Any]]:
        """run() in a slow-read thread, stopped after SLOW_READ_LIMIT_S (StatementTimeout),
        or as soon as the caller is cancelled (the connection is free when this returns)."""
        if self._read_executor is None:
            self._read_executor = ThreadPoolExecutor(
                max_workers=SQLITE_READ_THREADS, thread_name_prefix="sqlite-read"
            )

        def limited() -> list[dict[str, Any]]:
            deadline = time.monotonic() + SLOW_READ_LIMIT_S  # from when it starts to run
            conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
            try:
                return self.run(conn, sql, args)
            except sqlite3.OperationalError as exc:
                if time.monotonic() > deadline and "interrupt" in str(exc):
                    raise StatementTimeout(
                        f"a read ran past {SLOW_READ_LIMIT_S:g} s and was stopped"
                    ) from None
                raise
            finally:
                conn.set_progress_handler(None, 0)

        future = asyncio.get_running_loop().run_in_executor(self._read_executor, limited)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            conn.interrupt()  # no statement running: no effect
            await asyncio.wait([future])
            if not future.cancelled():
                future.exception()  # "interrupted", as asked: not logged as never retrieved
            raise

    async def fetch(
        self, sql: str, args: tuple[Any, ...], slow: bool = False
    ) -> list[dict[str, Any]]:
        if not is_read(sql):
            async with self.groups.member():
                return self.run(current_connection(), sql, args)
        conn = self._readers.pop() if self._readers else self.connect(query_only=True)
        try:
            if slow:
                return await self.run_slow(conn, sql, args)
            return self.run(conn, sql, args)
        finally:
            self._release_reader(conn)

    def _release_reader(self, conn: sqlite3.Connection) -> None:
        if len(self._readers) < SQLITE_IDLE_READERS and not conn.in_transaction:
            self._readers.append(conn)
        else:
            conn.close()

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[None]:
        conn = self._readers.pop() if self._readers else self.connect(query_only=True)
        try:
            with current_while(Transaction(conn, write=False)):
                conn.execute("BEGIN DEFERRED")
                yield
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # it only read: nothing to keep
            self._release_reader(conn)

    # -- the writer's group transactions (see group_commit.py) --

    async def begin_group(self, lane: str | None) -> sqlite3.Connection:
        """One writer: every lane's group is begun here (transactions.py gives them all
        lane None)."""
        conn = self._writers.pop() if self._writers else self.connect(query_only=False)
        try:
            await in_thread(self._threads(), conn.execute, "BEGIN IMMEDIATE")
            conn.execute("SAVEPOINT member")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._release_writer(conn)
            raise
        return conn

    async def end_group(self, conn: sqlite3.Connection, commit: bool) -> None:
        try:
            if commit:
                await in_thread(self._threads(), conn.execute, "COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._release_writer(conn)

    async def reclaim(self, tables: Sequence[str]) -> None:
        """Checkpoint the write-ahead log into the database file and truncate it to
        nothing, between two write transactions: the log holds older versions of pages
        (deleted values among them) until then. What was deleted is zeros in the file
        already (secure_delete). `tables` changes nothing here: the checkpoint is for the
        whole file."""
        async with self.groups.hold():
            conn = self._writers.pop() if self._writers else self.connect(query_only=False)
            try:
                for _ in range(RECLAIM_TRIES):
                    busy, _, _ = await in_thread(self._threads(), _checkpoint, conn)
                    if not busy:
                        return
                    await asyncio.sleep(0.1)  # a reader still on an older snapshot
                raise RuntimeError("the write-ahead log could not be checkpointed: readers")
            finally:
                self._release_writer(conn)

    @staticmethod
    def insert_rows(
        conn: sqlite3.Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        upsert: str,
    ) -> None:
        """Insert `rows`, in order, in a few multi-row statements: as many rows as fit in
        one (_rows_per_statement), then the rest in pieces whose sizes are powers of two,
        so the statements' texts are a few per table and are prepared once.

        Not one prepared statement run for each row: each run of a statement that writes
        a table with a full-text index (a trigger writes its FTS5 table, server/records/
        search.py) has every FTS5 table written in the transaction so far flush its
        pending terms to disk as a new segment, and merge segments. One statement for
        many rows flushes once: a new note cost about 5 times less CPU (docs/decisions/
        2026-12-06-sync-write-cpu.md)."""
        width = len(columns)
        most = _rows_per_statement(conn, width)
        start = 0
        while start < len(rows):
            left = len(rows) - start
            size = most if left >= most else 1 << (left.bit_length() - 1)
            sql = _insert_sql(table, tuple(columns), size, upsert)
            conn.execute(sql, list(itertools.chain.from_iterable(rows[start : start + size])))
            start += size

    @staticmethod
    def update_rows(
        conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Set `columns` of the rows whose ids end each of `rows` (ids unique), in a few
        statements that join the table to a list of VALUES (insert_rows says why), each
        padded with rows of NULLs (which match no id) to a power of two."""
        width = len(columns) + 1
        most = _rows_per_statement(conn, width)
        for start in range(0, len(rows), most):
            chunk = rows[start : start + most]
            size = 1 << (len(chunk) - 1).bit_length()
            args = list(itertools.chain.from_iterable(chunk))
            args += [None] * (width * (size - len(chunk)))
            conn.execute(_update_sql(table, tuple(columns), size), args)

    @staticmethod
    async def statements(conn: sqlite3.Connection, *sql: str) -> None:
        for statement in sql:
            conn.execute(statement)

    def _release_writer(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.close()  # never hand on a connection in an unknown state
        else:
            self._writers.append(conn)


def _rows_per_statement(conn: sqlite3.Connection, width: int) -> int:
    """The most rows of `width` values one statement takes: MAX_ROWS_PER_STATEMENT, or the
    power of two below what SQLite's limit of bound parameters allows."""
    fits = max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    return min(MAX_ROWS_PER_STATEMENT, 1 << (fits.bit_length() - 1))


@functools.lru_cache(maxsize=1024)
def _insert_sql(table: str, columns: tuple[str, ...], size: int, upsert: str) -> str:
    row = "(" + ", ".join("?" for _ in columns) + ")"
    values = ", ".join(row for _ in range(size))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {upsert}"


@functools.lru_cache(maxsize=1024)
def _update_sql(table: str, columns: tuple[str, ...], size: int) -> str:
    width = len(columns) + 1
    row = "(" + ", ".join("?" for _ in range(width)) + ")"
    sets = ", ".join(f"{column} = v.column{n}" for n, column in enumerate(columns, 1))
    return (
        f"UPDATE {table} SET {sets} FROM (VALUES {', '.join(row for _ in range(size))}) AS v"
        f" WHERE {table}.id = v.column{width}"
    )
