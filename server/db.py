"""The database: its connections, its transactions and raw SQL with `{}` placeholders.

One database per process, chosen by DATABASE_URL. Piccolo describes the tables and runs the
migrations; queries at run time go through this module, straight to the driver, because
the request path is mostly small indexed queries and a driver call is what they cost:

- SQLite: a few long-lived `sqlite3` connections. Statements run on the event loop thread
  (an indexed read takes microseconds, less than handing it to a thread would); what may
  wait, BEGIN IMMEDIATE (another process may hold the lock) and COMMIT (it syncs the log
  to disk), runs in a worker thread. Readers are `query_only`: a write outside a write
  transaction is an error, not a second writer waiting on the first.
- PostgreSQL: an asyncpg pool whose connections are not reset on release (we keep no
  session state), with BEGIN and the writer's lock in one round trip.

Writers are serialised (an asyncio lock plus BEGIN IMMEDIATE on SQLite, a transaction-level
advisory lock on PostgreSQL) so that sequence numbers handed out inside a write transaction
are in commit order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import string
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

# Piccolo's SQLite adapters and converters (UUID, timestamps, booleans) are registered when
# its engine module is imported; our connections use the same ones.
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from server.settings import DatabaseConfig

# Piccolo's converters (registered for every sqlite3 connection by declared column type)
# make a uuid.UUID of every UUID, parse every INTEGER through Decimal and check types at
# each call; the records' hot paths (sync pulls, lists) then spent most of their time there.
# Ours: UUIDs as strings (as the rest of fieldcrm uses them, and as PostgreSQL's are below),
# INTEGERs as SQLite has them, timestamps and booleans as Piccolo reads them.
sqlite3.converters.pop("INTEGER", None)
sqlite3.register_converter("UUID", bytes.decode)
sqlite3.register_converter("BOOLEAN", b"1".__eq__)
sqlite3.register_converter(
    "TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()).replace(tzinfo=UTC)
)

WRITE_LOCK_KEY = 7_346_114_019  # pg_advisory_xact_lock key for "the sync writer"
SQLITE_BUSY_TIMEOUT_S = 30  # how long BEGIN IMMEDIATE waits for another process's writer
SQLITE_IDLE_READERS = 8  # connections kept open for readers

T = TypeVar("T")


@dataclass(slots=True)
class _Transaction:
    connection: Any  # sqlite3.Connection or asyncpg.Connection
    write: bool
    # Statements held back to be sent together (defer()), sent before the next one.
    deferred: Callable[[], Awaitable[None]] | None = None


async def _send_deferred(transaction: _Transaction) -> None:
    if transaction.deferred is not None:
        send, transaction.deferred = transaction.deferred, None
        await send()


_current: ContextVar[_Transaction | None] = ContextVar("fieldcrm_transaction", default=None)


@lru_cache(maxsize=1024)
def _compile(sql: str, postgres: bool) -> str:
    """`{}` placeholders (Piccolo's QueryString convention, `{{` for a brace) to `$n` or `?`."""
    out: list[str] = []
    n = 0
    for literal, field, _, _ in string.Formatter().parse(sql):
        out.append(literal)
        if field is not None:
            n += 1
            out.append(f"${n}" if postgres else "?")
    return "".join(out)


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper().startswith(("SELECT", "WITH"))


async def _in_thread(executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in a worker thread; if the caller is cancelled meanwhile, wait for the thread
    to finish before handing on the cancellation (the connection is not free until then)."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class _SQLite:
    def __init__(self, path: str) -> None:
        self.path = path
        self._readers: list[sqlite3.Connection] = []
        self._writers: list[sqlite3.Connection] = []
        # BEGIN IMMEDIATE and COMMIT get threads of their own: in the loop's default
        # executor they would queue behind blocking work such as push sends.
        self._executor: ThreadPoolExecutor | None = None
        # One writer per event loop at a time (an asyncio.Lock is bound to the loop it first
        # waits in; tests run one loop per test).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def connect(self, *, query_only: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=SQLITE_BUSY_TIMEOUT_S,
            detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
            isolation_level=None,  # we say BEGIN and COMMIT ourselves
            check_same_thread=False,  # used by one task at a time, COMMIT from a thread
        )
        conn.execute("PRAGMA foreign_keys = ON")
        # In WAL mode FULL syncs the log on every commit: an acknowledged write survives a
        # power cut.
        conn.execute("PRAGMA synchronous = FULL")
        if query_only:
            conn.execute("PRAGMA query_only = ON")
        return conn

    async def start(self) -> None:
        conn = self.connect(query_only=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()

    async def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
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
        cursor = conn.execute(_compile(sql, False), args)
        rows = cursor.fetchall()
        if not rows:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        if not _is_read(sql):
            async with self.write_transaction():
                return self.run(_current_connection(), sql, args)
        conn = self._readers.pop() if self._readers else self.connect(query_only=True)
        try:
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
        token = _current.set(_Transaction(conn, write=False))
        try:
            conn.execute("BEGIN DEFERRED")
            yield
        finally:
            _current.reset(token)
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # it only read: nothing to keep
            self._release_reader(conn)

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[None]:
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            conn = self._writers.pop() if self._writers else self.connect(query_only=False)
            try:
                await _in_thread(self._threads(), conn.execute, "BEGIN IMMEDIATE")
            except BaseException:
                self._release_writer(conn)
                raise
            transaction = _Transaction(conn, write=True)
            token = _current.set(transaction)
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                try:
                    await _send_deferred(transaction)
                    await _in_thread(self._threads(), conn.execute, "COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                _current.reset(token)
                self._release_writer(conn)

    def _release_writer(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.close()  # never hand on a connection in an unknown state
        else:
            self._writers.append(conn)


async def _keep_session(connection: Any) -> None:
    """asyncpg's reset on release (a round trip each time) undoes session state; we keep
    none: no LISTEN, no session locks or settings. An open transaction is still rolled
    back by the pool before this is called."""


async def _uuids_as_text(connection: Any) -> None:
    """UUIDs in and out as strings, as fieldcrm uses them (and as SQLite's are above)."""
    await connection.set_type_codec(
        "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
    )


class _Postgres:
    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.pool: Any = None

    async def start(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            host=self.config.host,
            port=self.config.port,
            user=self.config.user,
            password=self.config.password,
            database=self.config.database,
            min_size=2,
            max_size=20,
            reset=_keep_session,
            init=_uuids_as_text,
        )

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def _pool(self) -> Any:
        if self.pool is None:
            raise RuntimeError("server.db.start() has not been called")
        return self.pool

    @staticmethod
    async def run(conn: Any, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(_compile(sql, True), *args)]

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        async with self._pool().acquire() as conn:
            return await self.run(conn, sql, args)

    @asynccontextmanager
    async def _transaction(self, begin: str, write: bool) -> AsyncIterator[None]:
        async with self._pool().acquire() as conn:
            await conn.execute(begin)
            transaction = _Transaction(conn, write=write)
            token = _current.set(transaction)
            try:
                yield
                await _send_deferred(transaction)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")
            finally:
                _current.reset(token)

    def read_transaction(self) -> Any:
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ", write=False)

    def write_transaction(self) -> Any:
        return self._transaction(
            f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})", write=True
        )

    def transaction(self) -> Any:
        return self._transaction("BEGIN", write=True)


_engine: Engine[Any] | None = None
ON_CONFIGURE: list[Callable[[], None]] = []  # caches of another module's to drop on configure()
_backend: _SQLite | _Postgres | None = None


def make_engine(config: DatabaseConfig) -> Engine[Any]:
    """The Piccolo engine for `config` (migrations and the table definitions use it)."""
    if config.is_postgres:
        conf: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "database": config.database,
        }
        if config.password:
            conf["password"] = config.password
        return PostgresEngine(config=conf)
    return SQLiteEngine(path=config.path, timeout=SQLITE_BUSY_TIMEOUT_S)


def configure(config: DatabaseConfig) -> Engine[Any]:
    """Choose the process's database and point every Piccolo table at it."""
    global _engine, _backend
    for hook in ON_CONFIGURE:
        hook()
    _engine = make_engine(config)
    _backend = _Postgres(config) if config.is_postgres else _SQLite(config.path)
    from server.tables import ALL_TABLES

    for table in ALL_TABLES:
        table._meta._db = _engine
    return _engine


def engine() -> Engine[Any]:
    if _engine is None:
        raise RuntimeError("server.db.configure() has not been called")
    return _engine


def _db() -> _SQLite | _Postgres:
    if _backend is None:
        raise RuntimeError("server.db.configure() has not been called")
    return _backend


def is_postgres() -> bool:
    return isinstance(_db(), _Postgres)


def _current_connection() -> Any:
    transaction = _current.get()
    assert transaction is not None
    return transaction.connection


async def start() -> None:
    """Open the pool (PostgreSQL) or set the journal mode (SQLite)."""
    await _db().start()


async def stop() -> None:
    await _db().stop()


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run raw SQL with `{}` placeholders inside the current transaction if any, and return
    its rows as dicts. Outside a transaction a write on SQLite takes the writer's turn."""
    backend = _db()
    transaction = _current.get()
    if transaction is None:
        return await backend.fetch(sql, args)
    if transaction.deferred is not None:
        await _send_deferred(transaction)
    if isinstance(backend, _Postgres):
        return await backend.run(transaction.connection, sql, args)
    return backend.run(transaction.connection, sql, args)


def defer(send: Callable[[], Awaitable[None]]) -> None:
    """Have `send` (which writes what its caller held back, e.g. rows to insert in one
    statement) run before the current write transaction's next statement, or before it
    commits. One sender at a time: a second replaces the first, so callers share one."""
    transaction = _current.get()
    if transaction is None or not transaction.write:
        raise RuntimeError("db.defer() needs a write transaction")
    transaction.deferred = send


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """A transaction that holds the single writer's lock until it commits. Inside another
    write transaction it is that one."""
    transaction = _current.get()
    if transaction is not None:
        if not transaction.write:
            raise RuntimeError("a write transaction cannot start inside a read transaction")
        yield
        return
    async with _db().write_transaction():
        yield


@asynccontextmanager
async def read_transaction() -> AsyncIterator[None]:
    """A transaction that sees one snapshot for all its reads (inside another transaction,
    that one)."""
    if _current.get() is not None:
        yield
        return
    async with _db().read_transaction():
        yield


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A plain transaction that does not hold up the sync writers on PostgreSQL (row locks
    are enough there); SQLite has one writer, so there it is a write transaction."""
    backend = _db()
    if _current.get() is not None or isinstance(backend, _SQLite):
        async with write_transaction():
            yield
        return
    async with backend.transaction():
        yield
