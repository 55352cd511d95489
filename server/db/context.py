"""The current transaction: a context variable, so a task and what it awaits share it.

A transaction carries its connection, whether it may write, at most one sender of writes
held back (defer()) and a dict for what is true only inside it (shared()). The drivers
and group commit make transactions and run blocks with one as the current one
(current_while()); everything else only reads it.

What callers rely on:
- A statement runs after what defer() held back has been sent (ready(), send_deferred()),
  and a write transaction sends it before it commits.
- shared() lasts exactly as long as the database transaction; write transactions
  committed together share one.
- When its block ends, a transaction lets go of its shared dict and its sender, though a
  timer or task made inside the block may keep the transaction itself alive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


class StatementTimeout(Exception):
    """A slow read (fetch(..., slow=True)) ran past SLOW_READ_LIMIT_S and was stopped."""


# How long a slow read may run before it is stopped (StatementTimeout): one crafted request
# must not hold a reader, or on SQLite one of its few read threads, for seconds.
SLOW_READ_LIMIT_S = 1.0


@dataclass(slots=True)
class Transaction:
    connection: Any  # sqlite3.Connection or asyncpg.Connection
    write: bool
    # Statements held back to be sent together (defer()), sent before the next one.
    deferred: Callable[[], Awaitable[None]] | None = None
    # What callers keep for as long as the database transaction lasts (shared()).
    shared: dict[Any, Any] = field(default_factory=dict)


current_transaction: ContextVar[Transaction | None] = ContextVar(
    "fieldcrm_transaction", default=None
)


@contextmanager
def current_while(transaction: Transaction) -> Iterator[None]:
    """`transaction` as the current one for the block. After it, the transaction lets go
    of what it kept: a timer or task made during the block holds it (in the context it
    was made in) for as long as it lasts, and asyncpg gives every statement it prepares a
    timer."""
    token = current_transaction.set(transaction)
    try:
        yield
    finally:
        current_transaction.reset(token)
        transaction.shared = {}
        transaction.deferred = None


async def send_deferred(transaction: Transaction) -> None:
    if transaction.deferred is not None:
        send, transaction.deferred = transaction.deferred, None
        await send()


def current_connection() -> Any:
    """The current transaction's connection (there must be one)."""
    transaction = current_transaction.get()
    assert transaction is not None
    return transaction.connection


async def ready(caller: str, *, write: bool = False) -> Transaction:
    """The current transaction (a write one if `write`), its held-back statements sent."""
    transaction = current_transaction.get()
    if transaction is None or (write and not transaction.write):
        raise RuntimeError(f"db.{caller}() needs a {'write ' if write else ''}transaction")
    if transaction.deferred is not None:
        await send_deferred(transaction)
    return transaction


def shared() -> dict[Any, Any]:
    """A dict that lasts as long as the current database transaction, for what is true
    only inside it (rows written but not committed). Write transactions committed together
    share theirs; a caller adds to it only once its own part is sure to stay, i.e. after
    its last statement (a member's part that fails is undone, and a group whose undo fails
    is not committed at all)."""
    transaction = current_transaction.get()
    if transaction is None:
        raise RuntimeError("db.shared() needs a transaction")
    return transaction.shared


def defer(send: Callable[[], Awaitable[None]]) -> None:
    """Have `send` (which writes what its caller held back, e.g. rows to insert in one
    statement) run before the current write transaction's next statement, or before it
    commits. One sender at a time: a second replaces the first, so callers share one."""
    transaction = current_transaction.get()
    if transaction is None or not transaction.write:
        raise RuntimeError("db.defer() needs a write transaction")
    transaction.deferred = send


# shared() key: the work a write transaction does last, before it commits (at_commit()).
AT_COMMIT = "at commit"


def at_commit(work: Callable[[], Awaitable[None]]) -> None:
    """Have `work` run once, as the current write transaction's last statements, just
    before it commits (after every member of its group: group_commit.py); if it fails,
    nothing of the transaction stays. One at a time: a second replaces the first, so
    callers share one and keep what it writes in shared()."""
    transaction = current_transaction.get()
    if transaction is None or not transaction.write:
        raise RuntimeError("db.at_commit() needs a write transaction")
    transaction.shared[AT_COMMIT] = work
