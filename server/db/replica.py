"""A streaming replica of the PostgreSQL primary (DATABASE_REPLICA_URL), for reads that
may see an older snapshot than the primary's: the sync engine's pulls without mutations.

What callers rely on:
- configure_replica() chooses it (None: no replica); configure() forgets it (ON_CONFIGURE),
  start() opens its pool and stop() closes it (server/db/setup.py). Opening never fails:
  a replica that cannot be reached is only marked down.
- replica_read_transaction() is a read_transaction() on the replica: one snapshot
  (REPEATABLE READ, READ ONLY), and every fetch() inside it runs there. It raises
  ReplicaUnavailable, before its block runs or out of it, when the replica cannot answer:
  none configured, not in recovery (a promoted replica, or a primary: its history may
  differ from the primary's), down (unreachable, shutting down: it is then left alone for
  RETRY_AFTER_S, and one request at a time tries it again), more than the allowed lag
  behind the primary, or a statement cancelled by the replay (a recovery conflict). The
  caller then does the same on the primary; nothing is lost, the replica only ever reads.
- How far behind the replica is, in seconds, is read at most every LAG_CHECK_S: 0 when
  it has replayed all the WAL it received, else the age of the last transaction it
  replayed (a replay paused or stuck shows as a lag that grows).
- Whether the replica has replayed what a client has seen is not decided here: the
  caller reads it in the snapshot (sync.engine.caught_up).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from server.db.context import Transaction, current_transaction, current_while
from server.db.postgres import _keep_session, _set_up
from server.settings import DatabaseConfig

# After the replica failed to answer, how long pulls go straight to the primary.
RETRY_AFTER_S = 5.0
# How long a connection to the replica may take before it counts as down: a pull waits
# for it (the primary answers instead), so it is short.
CONNECT_TIMEOUT_S = 2.0
# How often the replica's lag is read (one statement, on a connection about to be used).
LAG_CHECK_S = 1.0
MIN_CONNECTIONS = 2
MAX_CONNECTIONS = 20
# -1: not a replica at all (promoted, or the URL names a primary), which answers nothing.
_LAG = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN -1.0"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0"
    " ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 1e9)"
    " END::float8"
)


class ReplicaUnavailable(Exception):
    """The replica cannot answer this read: do it on the primary."""


def _failures() -> tuple[type[BaseException], ...]:
    """What the replica raises when it cannot answer (down, going down, starting, a query
    cancelled by the replay), as opposed to a mistake in the query."""
    import asyncpg

    return (
        OSError,
        TimeoutError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.OperatorInterventionError,  # 57P01 shutting down, 57P03 starting up
        asyncpg.SerializationError,  # 40001: canceled by a conflict with recovery
    )


class Replica:
    def __init__(self, config: DatabaseConfig, max_lag_s: float) -> None:
        self.config = config
        self.max_lag_s = max_lag_s
        self.pool: Any = None
        self._down_until = 0.0
        self._probing = False  # one request tries a replica that was down
        self._lag_checked_at = -LAG_CHECK_S
        self._lag_s = 0.0
        self._opening = asyncio.Lock()  # one pool, however many pulls find none

    async def start(self) -> None:
        """Open the pool; if the replica cannot be reached, mark it down (pulls go to the
        primary) and open it later, when a pull tries again."""
        try:
            await self._open()
        except _failures():
            self._down()

    async def _open(self) -> None:
        """The pool, made once however many pulls find none (as the primary's is made,
        server/db/postgres.py)."""
        import asyncpg

        async with self._opening:
            if self.pool is not None:
                return
            self.pool = await asyncpg.create_pool(
                host=self.config.host,
                port=self.config.port,
                user=self.config.user,
                password=self.config.password,
                database=self.config.database,
                min_size=MIN_CONNECTIONS,
                max_size=MAX_CONNECTIONS,
                timeout=CONNECT_TIMEOUT_S,
                reset=_keep_session,
                init=_set_up,
                max_cached_statement_lifetime=0,
            )

    async def stop(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    def _down(self) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_S

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[None]:
        now = time.monotonic()
        if now < self._down_until or (self._down_until and self._probing):
            raise ReplicaUnavailable("the replica is down")
        probing = bool(self._down_until)
        self._probing = probing
        failures = _failures()
        try:
            try:
                if self.pool is None:
                    await self._open()
                # No timeout on the wait for a free connection: a busy pool is not a
                # replica that is down (a new connection gives up after CONNECT_TIMEOUT_S).
                async with self.pool.acquire() as conn:
                    if now - self._lag_checked_at >= LAG_CHECK_S:
                        self._lag_s = float(await conn.fetchval(_LAG))
                        self._lag_checked_at = now
                    if self._lag_s < 0:
                        self._down()
                        raise ReplicaUnavailable("DATABASE_REPLICA_URL is not a replica")
                    if self._lag_s > self.max_lag_s:
                        raise ReplicaUnavailable(f"the replica is {self._lag_s:.1f} s behind")
                    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    self._down_until = 0.0
                    transaction = Transaction(conn, write=False)
                    with current_while(transaction):
                        try:
                            yield
                        finally:
                            # Nothing to keep: a read-only transaction ends the same either way.
                            if not conn.is_closed():
                                await conn.execute("ROLLBACK")
            except failures as exc:
                import asyncpg

                if not isinstance(exc, asyncpg.SerializationError):
                    self._down()
                raise ReplicaUnavailable(f"the replica did not answer: {exc}") from exc
        finally:
            if probing:
                self._probing = False


_replica: Replica | None = None


def configure_replica(config: DatabaseConfig | None, max_lag_s: float = 10.0) -> None:
    """Choose the replica pulls may read from (None: none). After configure(), which
    forgets the previous one."""
    global _replica
    _replica = None if config is None else Replica(config, max_lag_s)


def forget_replica() -> None:
    """configure() calls this: a replica belongs to the database it replicates. Its pool,
    if open, is closed by stop() before that."""
    global _replica
    _replica = None


def has_replica() -> bool:
    return _replica is not None


async def start_replica() -> None:
    if _replica is not None:
        await _replica.start()


async def stop_replica() -> None:
    if _replica is not None:
        await _replica.stop()


@asynccontextmanager
async def replica_read_transaction() -> AsyncIterator[None]:
    """A read_transaction() on the replica; ReplicaUnavailable when it cannot answer (see
    the module's docstring). Not inside another transaction."""
    if current_transaction.get() is not None:
        raise RuntimeError("a replica read cannot start inside a transaction")
    if _replica is None:
        raise ReplicaUnavailable("no replica is configured")
    async with _replica.read_transaction():
        yield
