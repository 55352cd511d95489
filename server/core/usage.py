"""What the limits count (server/core/limits.py decides with it), kept in the database so
that every server process on one PostgreSQL counts the same writes:

- `WriteBudgets`: each user's write budget, a token bucket kept as one number per user
  (`write_budgets.full_at_us`: when their bucket is full again, in microseconds since the
  epoch; the generic cell rate algorithm).
- `ScopeUsage`: how many live records each scope holds (`scope_usage.records`), moved by
  the session's creates, deletes and moves.

Both belong to one session (one write transaction, which holds the single writer's lock,
so two processes never read the same budget at once): they read what they need once,
keep what the transaction changed, and write it with the session's other held-back rows,
so a budget spent commits with the writes it paid for, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from server import db
from server.core.rows import IN_CHUNK, chunks


class WriteBudgets:
    def __init__(self) -> None:
        self._users: set[str] = set()  # whose budgets to read at the first `full_at`
        self._full_at: dict[str, int] = {}
        self._changed: set[str] = set()

    def expect(self, user_ids: Iterable[str]) -> None:
        """Note users whose budgets this transaction may ask for: read in one go."""
        self._users.update(user_id for user_id in user_ids if user_id)

    async def full_at(self, user_id: str) -> int:
        """When `user_id`'s bucket is full again (microseconds; 0: it always was)."""
        if user_id not in self._full_at:
            wanted = sorted((self._users | {user_id}) - set(self._full_at))
            for chunk in chunks(wanted, IN_CHUNK):
                where, args = db.any_of("user_id", chunk)
                rows = await db.fetch(
                    f"SELECT user_id, full_at_us FROM write_budgets WHERE {where}", *args
                )
                found = {str(row["user_id"]): int(row["full_at_us"]) for row in rows}
                for key in chunk:
                    self._full_at[key] = found.get(key, 0)
        return self._full_at[user_id]

    def spend(self, user_id: str, full_at_us: int) -> None:
        self._full_at[user_id] = full_at_us
        self._changed.add(user_id)

    async def write(self) -> None:
        changed, self._changed = self._changed, set()
        await db.insert_rows(
            "write_budgets",
            ("user_id", "full_at_us"),
            [[user_id, self._full_at[user_id]] for user_id in sorted(changed)],
            upsert="ON CONFLICT (user_id) DO UPDATE SET full_at_us = excluded.full_at_us",
        )


class ScopeUsage:
    def __init__(self) -> None:
        self._delta: dict[str, int] = {}

    def add(self, scope: str, records: int) -> None:
        self._delta[scope] = self._delta.get(scope, 0) + records

    def move(self, old: str, new: str) -> None:
        self.add(old, -1)
        self.add(new, 1)

    async def write(self) -> None:
        delta, self._delta = self._delta, {}
        await db.insert_rows(
            "scope_usage",
            ("scope", "records"),
            [[scope, n] for scope, n in sorted(delta.items()) if n],
            upsert="ON CONFLICT (scope) DO UPDATE SET records = scope_usage.records"
            " + excluded.records",
        )


async def team_records(team_id: str) -> int:
    """The live records a team holds: its accounts and what hangs off them, and its
    members' tasks on no account (in their own scopes). Sees the transaction's writes."""
    member = "'user:' || CAST(id AS TEXT)"
    rows = await db.fetch(
        "SELECT COALESCE(SUM(records), 0) AS records FROM scope_usage WHERE scope = {}"
        f" OR scope IN (SELECT {member} FROM users WHERE team_id = {{}})",
        f"team:{team_id}",
        team_id,
    )
    return int(rows[0]["records"])
