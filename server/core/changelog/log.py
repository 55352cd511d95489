"""The change log (table sync_changes): for each record, the entry that points at its
newest state per scope, by seq, which is what clients pull after their cursor.

A put or delete entry names a record's newest version in the scope it is in; an evict
entry tells the devices of a scope the record left it; an erase entry (SPEC section 12)
tells the devices of a scope, and every admin's, that the record is gone from the server,
erased on request (clients get it as an evict marked `erased`). A `ChangeLog` belongs to one write
session: it notes entries as the session writes and sends them in a few statements
(before a pull reads the log, and at flush), with the same outcome as writing each at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server import db
from server.core.actor import scope_filter
from server.core.rows import IN_CHUNK, chunks
from sync.cursor import Position

# A record's stored entries to remove: all of them, whatever their op and scope.
ALL = "*"


class ChangeLog:
    def __init__(self) -> None:
        # Per record, the entries to add (seq, scope, op), and which stored entries go
        # (None: its put or delete; a scope: its evict from that scope).
        self._rows: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        self._gone: dict[tuple[str, str], set[str | None]] = {}
        # Records created since the log was last written: none of their entries are stored.
        self._new: set[tuple[str, str]] = set()
        # The highest seq this log noted in each scope (for newest.py's notification).
        self.newest: dict[str, int] = {}
        # Each scope's domain, as its session found it (every entry's scope is here on
        # PostgreSQL; SQLite has one domain, '').
        self.domains: dict[str, str] = {}

    def _noted(self, seq: int, scope: str) -> None:
        if self.newest.get(scope, -1) < seq:
            self.newest[scope] = seq

    def created(self, table: str, record_id: str) -> None:
        """Note a new record (its `put` follows): it has no stored entries to remove."""
        self._new.add((table, record_id))

    def put(self, table: str, record_id: str, seq: int, scope: str, op: str) -> None:
        """Point the log at the record's newest state (`op`: put or delete). An earlier
        evict from the scope it is now in is dropped, so a puller gets the record once."""
        key = (table, record_id)
        rows = [r for r in self._rows.get(key, []) if r[2] == "evict" and r[1] != scope]
        self._rows[key] = [*rows, (seq, scope, op)]
        self._gone.setdefault(key, set()).update((None, scope))
        self._noted(seq, scope)

    def erase(self, table: str, record_id: str, entries: Sequence[tuple[int, str]]) -> None:
        """The record is gone from the server (erased on request): every entry of it goes,
        and one `erase` entry per (seq, scope) tells the devices of that scope, and every
        admin's, to drop it (pulled as an evict marked `erased`)."""
        key = (table, record_id)
        self._rows[key] = [(seq, scope, "erase") for seq, scope in entries]
        self._gone.setdefault(key, set()).add(ALL)
        for seq, scope in entries:
            self._noted(seq, scope)

    def evict(self, table: str, record_id: str, seq: int, old_scope: str) -> None:
        """Tell the devices of `old_scope` that the record left it."""
        key = (table, record_id)
        rows = [r for r in self._rows.get(key, []) if r[1:] != (old_scope, "evict")]
        self._rows[key] = [*rows, (seq, old_scope, "evict")]
        self._gone.setdefault(key, set()).add(old_scope)
        self._noted(seq, old_scope)

    async def write(self) -> None:
        """Write what was noted: the same entries go and come as if each had been written
        at once (stored entries only ever go, and noted ones are already filtered), in a
        few statements."""
        groups: dict[tuple[str, frozenset[str | None]], list[str]] = {}
        for (table, record_id), gone in self._gone.items():
            if (table, record_id) not in self._new:
                groups.setdefault((table, frozenset(gone)), []).append(record_id)
        for (table, dropped), ids in groups.items():
            scopes = sorted(scope for scope in dropped if scope not in (None, ALL))
            which = ["op <> 'evict'"] if None in dropped else []
            if scopes:
                which.append(f"(op = 'evict' AND scope IN ({', '.join('{}' for _ in scopes)}))")
            if ALL in dropped:
                which, scopes = ["1 = 1"], []
            for chunk in chunks(ids, IN_CHUNK):
                where, args = db.any_of("record_id", chunk)
                await db.fetch(
                    f"DELETE FROM sync_changes WHERE record_table = {{}} AND {where}"
                    f" AND ({' OR '.join(which)})",
                    table,
                    *args,
                    *scopes,
                )
        domains = self.domains
        rows = [
            [seq, table, record_id, scope, op, domains.get(scope, "")]
            for (table, record_id), noted in self._rows.items()
            for seq, scope, op in noted
        ]
        await db.insert_rows(
            "sync_changes", ("seq", "record_table", "record_id", "scope", "op", "domain"), rows
        )
        self._rows.clear()
        self._gone.clear()
        self._new.clear()


def _after(after: int | Position) -> tuple[str, list[Any]]:
    """SQL (with `{}` placeholders) that an entry comes after `after`: its seq above its
    domain's there."""
    if isinstance(after, int):
        return "seq > {}", [after]
    if not after.behind:
        return "seq > {}", [after.seq]
    terms = " OR ".join("(domain = {} AND seq > {})" for _ in after.behind)
    args: list[Any] = [after.lowest, after.seq]
    for domain, seq in after.behind:
        args += [domain, seq]
    return f"seq > {{}} AND (seq > {{}} OR {terms})", args


async def read(
    scopes: tuple[str, ...] | None, after: int | Position, fresh_until: int, limit: int
) -> Sequence[Sequence[Any]]:
    """Up to `limit` entries (seq, table, id, op) after `after` (a seq, or a seq per
    domain) in these scopes (None: every scope, evicts left out), in seq order; deletes
    and evicts at or below `fresh_until` are left out."""
    args: list[Any] = []
    if scopes is None:
        where = "op <> 'evict'"
    else:
        where, args = scope_filter(scopes)
    since, since_args = _after(after)
    return await db.fetch_rows(
        f"SELECT seq, record_table, record_id, op FROM sync_changes WHERE {where}"
        f" AND {since} AND (op = 'put' OR seq > {{}}) ORDER BY seq LIMIT {{}}",
        *args,
        *since_args,
        fresh_until,
        limit,
    )


async def read_scopes(
    scopes: Sequence[str], after: int, fresh_until: int, limit: int
) -> Sequence[Sequence[Any]]:
    """As `read` for these exact scopes (none ending with "*") after a seq, with each
    entry's scope and domain: (seq, table, id, op, scope, domain). For the pulls of
    several requests at once."""
    where, args = db.any_of("scope", scopes)
    return await db.fetch_rows(
        "SELECT seq, record_table, record_id, op, scope, domain FROM sync_changes"
        f" WHERE {where} AND seq > {{}} AND (op = 'put' OR seq > {{}}) ORDER BY seq LIMIT {{}}",
        *args,
        after,
        fresh_until,
        limit,
    )
