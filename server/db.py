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
import collections
import sqlite3
import string
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

# Importing Piccolo's SQLite engine registers its sqlite3 adapters (UUID, datetime, Decimal
# and list parameters; our connections use them too) and converters, process-wide. Being
# imported here, it has done so before use_our_converters() can run.
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from server.settings import DatabaseConfig


def use_our_converters() -> None:
    """Have sqlite3 read UUID, BOOLEAN, TIMESTAMPTZ and INTEGER columns our way.

    Piccolo's converters make a uuid.UUID of every UUID, parse every INTEGER through
    Decimal and check types at each call; the records' hot paths (sync pulls, lists) then
    spent most of their time there. Ours: UUIDs as strings (as the rest of fieldcrm uses
    them, and as PostgreSQL's are below), INTEGERs as SQLite has them, timestamps and
    booleans as Piccolo reads them.

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
    # What callers keep for as long as the database transaction lasts (shared()).
    shared: dict[Any, Any] = field(default_factory=dict)


@contextmanager
def _current_while(transaction: _Transaction) -> Iterator[None]:
    """`transaction` as the current one for the block. After it, the transaction lets go
    of what it kept: a timer or task made during the block holds it (in the context it
    was made in) for as long as it lasts, and asyncpg gives every statement it prepares a
    timer."""
    token = _current.set(transaction)
    try:
        yield
    finally:
        _current.reset(token)
        transaction.shared = {}
        transaction.deferred = None


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
    for literal, name, _, _ in string.Formatter().parse(sql):
        out.append(literal)
        if name is not None:
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


class _Backend(Protocol):
    async def begin_group(self) -> Any: ...

    async def end_group(self, conn: Any, commit: bool) -> None: ...

    async def statements(self, conn: Any, *sql: str) -> None: ...


@dataclass(eq=False)
class _Group:
    """Write transactions that run one after another in one database transaction and are
    committed together."""

    turns: collections.deque[asyncio.Future[Any]] = field(default_factory=collections.deque)
    open: bool = True  # still takes members
    done: asyncio.Future[None] | None = None  # set by the member whose turn it is
    committed: asyncio.Future[None] | None = None
    broken: BaseException | None = None  # a member could not undo its part
    clean: bool = True  # the savepoint "member" is set and nothing has run since
    shared: dict[Any, Any] = field(default_factory=dict)  # see shared()


class _Groups:
    """Group commit for the single writer. Write transactions that arrive while the writer
    is busy (another group holds the lock or is committing) join the next group; its
    leader takes the lock, gives each member its turn on the one connection, inside a
    savepoint so that a member that fails undoes only its own part, and commits once for
    all: the lock, the begin and the sync to disk are paid once per group, not once per
    request. A member returns only after the commit, so each is durable when it returns;
    if the commit fails, every member fails and nothing of any of them is applied."""

    def __init__(self, backend: _Backend) -> None:
        self.backend = backend
        # Per event loop (tests run one loop per test): its writer's lock and the group
        # taking members.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._forming: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Group] = (
            weakref.WeakKeyDictionary()
        )
        self._leaders: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def member(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        group = self._forming.get(loop)
        if group is None or not group.open:
            group = _Group(committed=loop.create_future())
            self._forming[loop] = group
            leader = loop.create_task(self._lead(loop, group))
            self._leaders.add(leader)
            leader.add_done_callback(self._leaders.discard)
        turn: asyncio.Future[Any] = loop.create_future()
        group.turns.append(turn)
        try:
            conn = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._finish_turn(group)  # the turn came with the cancellation
            raise
        try:
            transaction = _Transaction(conn, write=True, shared=group.shared)
            with _current_while(transaction):
                # Each member starts at a savepoint: the leader sets the first with BEGIN;
                # after a member that succeeded it is moved up (in one round trip).
                if not group.clean:
                    await self.backend.statements(
                        conn, "RELEASE SAVEPOINT member", "SAVEPOINT member"
                    )
                group.clean = False
                try:
                    yield
                    await _send_deferred(transaction)
                except BaseException:
                    try:
                        await self.backend.statements(conn, "ROLLBACK TO SAVEPOINT member")
                        group.clean = True  # back at the savepoint, which stays set
                    except BaseException as undo:
                        group.broken = undo
                    raise
        finally:
            self._finish_turn(group)
        assert group.committed is not None
        await asyncio.shield(group.committed)

    @staticmethod
    def _finish_turn(group: _Group) -> None:
        if group.done is not None and not group.done.done():
            group.done.set_result(None)

    async def _lead(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        assert group.committed is not None
        lock = self._locks.setdefault(loop, asyncio.Lock())
        try:
            async with lock:
                conn = await self.backend.begin_group()
                commit = False
                try:
                    while group.broken is None:
                        if not group.turns:
                            await asyncio.sleep(0)  # one more round of the loop for latecomers
                            if not group.turns:
                                break
                        turn = group.turns.popleft()
                        if turn.done():
                            continue  # its member gave up waiting
                        group.done = loop.create_future()
                        turn.set_result(conn)
                        try:
                            await asyncio.shield(group.done)
                        except asyncio.CancelledError:
                            # The member still has the connection: let it finish first.
                            await asyncio.wait([group.done])
                            raise
                    if group.broken is not None:
                        raise group.broken
                    commit = True
                finally:
                    group.open = False
                    await self.backend.end_group(conn, commit)
        except BaseException as exc:
            group.open = False
            for turn in group.turns:
                if not turn.done():
                    turn.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not group.committed.done():
                group.committed.set_exception(
                    exc if isinstance(exc, Exception) else RuntimeError("the writer stopped")
                )
            if not isinstance(exc, Exception):
                raise
        else:
            group.committed.set_result(None)
        finally:
            if self._forming.get(loop) is group:
                del self._forming[loop]


class _SQLite:
    def __init__(self, path: str) -> None:
        self.path = path
        self._readers: list[sqlite3.Connection] = []
        self._writers: list[sqlite3.Connection] = []
        # BEGIN IMMEDIATE and COMMIT get threads of their own: in the loop's default
        # executor they would queue behind blocking work such as push sends.
        self._executor: ThreadPoolExecutor | None = None
        self.groups = _Groups(self)

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
        # A group commit's members run in savepoints, whose undo journal is a temporary
        # file unless kept in memory (it only ever holds one request's pages).
        conn.execute("PRAGMA temp_store = MEMORY")
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
            async with self.groups.member():
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
        try:
            with _current_while(_Transaction(conn, write=False)):
                conn.execute("BEGIN DEFERRED")
                yield
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # it only read: nothing to keep
            self._release_reader(conn)

    # -- the writer's group transactions (see _Groups) --

    async def begin_group(self) -> sqlite3.Connection:
        conn = self._writers.pop() if self._writers else self.connect(query_only=False)
        try:
            await _in_thread(self._threads(), conn.execute, "BEGIN IMMEDIATE")
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
                await _in_thread(self._threads(), conn.execute, "COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._release_writer(conn)

    @staticmethod
    async def statements(conn: sqlite3.Connection, *sql: str) -> None:
        for statement in sql:
            conn.execute(statement)

    def _release_writer(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.close()  # never hand on a connection in an unknown state
        else:
            self._writers.append(conn)


async def _keep_session(connection: Any) -> None:
    """asyncpg's reset on release (a round trip each time) undoes session state; we keep
    none: no LISTEN, no session locks or settings. An open transaction is still rolled
    back by the pool before this is called."""


# Every column type fieldcrm's tables use, as arrays (insert_rows, update_rows, any_of).
_ARRAY_TYPES = (
    "uuid",
    "text",
    "character varying",
    "timestamp with time zone",
    "timestamp without time zone",
    "date",
    "boolean",
    "bigint",
    "integer",
    "double precision",
)


async def _set_up(connection: Any) -> None:
    """UUIDs in and out as strings, as fieldcrm uses them (and as SQLite's are above).
    Then one statement that names each array type: asyncpg looks up a type it has not met
    with a catalogue query (2 to 7 ms) the first time a statement on that connection uses
    it; this pays it once, when the connection opens, not inside the writer's turn."""
    await connection.set_type_codec(
        "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
    )
    marks = ", ".join(f"${n}::{name}[]" for n, name in enumerate(_ARRAY_TYPES, 1))
    await connection.prepare(f"SELECT {marks}")


class _Postgres:
    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.pool: Any = None
        self.groups = _Groups(self)

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
            init=_set_up,
            # Prepared statements leave the cache by age only if given one: each then has
            # a timer, hundreds in all. The cache is bounded by its size anyway.
            max_cached_statement_lifetime=0,
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
            with _current_while(transaction):
                try:
                    yield
                    await _send_deferred(transaction)
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")

    def read_transaction(self) -> Any:
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ", write=False)

    # -- the writer's group transactions (see _Groups) --

    async def begin_group(self) -> Any:
        conn = await self._pool().acquire()
        try:
            await conn.execute(
                f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY}); SAVEPOINT member"
            )
        except BaseException:
            await self._pool().release(conn)
            raise
        return conn

    async def end_group(self, conn: Any, commit: bool) -> None:
        try:
            await conn.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            # A connection left in a transaction is reset (rolled back) by the pool.
            await self._pool().release(conn)

    @staticmethod
    async def statements(conn: Any, *sql: str) -> None:
        await conn.execute("; ".join(sql))

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
    """Choose the process's database; return its Piccolo engine. No table is pointed at
    it here (this module knows none): the caller does that (server.tables.bind_tables)."""
    global _engine, _backend
    for hook in ON_CONFIGURE:
        hook()
    _PG_TYPES.clear()
    _engine = make_engine(config)
    if config.is_postgres:
        _backend = _Postgres(config)
    else:
        use_our_converters()  # the one effect outside this module: see there
        _backend = _SQLite(config.path)
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


async def _ready(caller: str, *, write: bool = False) -> _Transaction:
    """The current transaction (a write one if `write`), its held-back statements sent."""
    transaction = _current.get()
    if transaction is None or (write and not transaction.write):
        raise RuntimeError(f"db.{caller}() needs a {'write ' if write else ''}transaction")
    if transaction.deferred is not None:
        await _send_deferred(transaction)
    return transaction


async def fetch_rows(sql: str, *args: Any) -> Sequence[Sequence[Any]]:
    """As fetch(), inside a transaction, with each row as a sequence of its columns (no
    dict per row: for queries that return many)."""
    transaction = await _ready("fetch_rows")
    if is_postgres():
        rows: Sequence[Sequence[Any]] = await transaction.connection.fetch(
            _compile(sql, True), *args
        )
        return rows
    found: list[tuple[Any, ...]] = transaction.connection.execute(
        _compile(sql, False), args
    ).fetchall()
    return found


async def insert_rows(
    table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, upsert: str = ""
) -> None:
    """Insert `rows` (values in the order of `columns`) in the current write transaction.
    On PostgreSQL in one statement whose text does not depend on how many rows there are
    (each column as one array, through unnest), so it is parsed and planned once per
    connection; on SQLite one prepared statement run for each row. `upsert`: an
    `ON CONFLICT (...) DO UPDATE SET ...` clause."""
    if not rows:
        return
    transaction = await _ready("insert_rows", write=True)
    names = ", ".join(columns)
    if isinstance(_db(), _Postgres):
        types = await _column_types(transaction.connection, table)
        arrays = ", ".join(f"${n}::{types[c]}[]" for n, c in enumerate(columns, 1))
        sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {upsert}"
        await transaction.connection.execute(sql, *(list(c) for c in zip(*rows, strict=True)))
    else:
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) {upsert}"
        transaction.connection.executemany(sql, rows)


async def update_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set `columns` of the rows whose ids end each of `rows` (values in the order of
    `columns`, then the id), in the current write transaction: on PostgreSQL in one
    statement (the values as arrays, through unnest), on SQLite one prepared statement run
    for each row."""
    if not rows:
        return
    transaction = await _ready("update_rows", write=True)
    if isinstance(_db(), _Postgres):
        types = await _column_types(transaction.connection, table)
        arrays = ", ".join(f"${n}::{types[c]}[]" for n, c in enumerate([*columns, "id"], 1))
        sets = ", ".join(f"{c} = v.{c}" for c in columns)
        sql = (
            f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({', '.join(columns)}, id)"
            f" WHERE {table}.id = v.id"
        )
        await transaction.connection.execute(sql, *(list(c) for c in zip(*rows, strict=True)))
    else:
        sets = ", ".join(f"{c} = ?" for c in columns)
        transaction.connection.executemany(f"UPDATE {table} SET {sets} WHERE id = ?", rows)


def any_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """A condition that `column` is one of `values`, with its arguments: on PostgreSQL
    `= ANY` of one array (one statement text, planned once, however many values); on
    SQLite an IN list, padded(). Callers keep `values` to a few hundred at a time."""
    if isinstance(_db(), _Postgres):
        return f"{column} = ANY({{}})", [list(values)]
    values = padded(values)
    return f"{column} IN ({', '.join('{}' for _ in values)})", values


def padded(values: Sequence[T]) -> list[T]:
    """`values` for an IN list on SQLite, its length rounded up to a power of two by
    repeating the last: the same few statement texts come back, and their prepared
    statements (sqlite3 keeps them per connection, by text) are reused."""
    items = list(values)
    size = 1
    while size < len(items):
        size *= 2
    return items + items[-1:] * (size - len(items))


async def _column_types(connection: Any, table: str) -> dict[str, str]:
    """Each column's type in PostgreSQL's words, read once per process and table."""
    types = _PG_TYPES.get(table)
    if types is None:
        rows = await connection.fetch(
            "SELECT attname, format_type(atttypid, NULL) AS type FROM pg_attribute"
            " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            table,
        )
        types = _PG_TYPES[table] = {r["attname"]: r["type"] for r in rows}
    return types


_PG_TYPES: dict[str, dict[str, str]] = {}  # emptied by configure()


def shared() -> dict[Any, Any]:
    """A dict that lasts as long as the current database transaction, for what is true
    only inside it (rows written but not committed). Write transactions committed together
    share theirs; a caller adds to it only once its own part is sure to stay, i.e. after
    its last statement (a member's part that fails is undone, and a group whose undo fails
    is not committed at all)."""
    transaction = _current.get()
    if transaction is None:
        raise RuntimeError("db.shared() needs a transaction")
    return transaction.shared


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
    async with _db().groups.member():
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
