"""What this process knows of the newest seq of each scope, so that an idle poll (a sync
request with no mutations whose cursor is already past every change its user can see) is
answered without a transaction and without a pooled connection (SPEC section 15,
docs/sync-protocol.md "Idle polls").

What it keeps is an upper bound: every change committed is in a scope whose entry in
`by_scope` is at least its seq, or has a seq at or below the floor (on SQLite `floor`, on
PostgreSQL its domain's in `floors`: seqs are in commit order within a team only). It
learns of commits:
- on PostgreSQL, from every process's group commits: each sends, in its last statement, a
  NOTIFY on CHANNEL with its commit number (sync_meta's `commits`, raised by one), its
  highest seq and the highest seq of each scope it wrote (PostgreSQL delivers them when
  and only when the transaction commits, in commit order, and the commit numbers are in
  commit order too). The side connection (server/db/side.py) hears them; while it is down
  or opening again, nothing is known and every poll takes the ordinary path.
- on SQLite, from this process's own write sessions, noted before they commit (an upper
  bound either way: a rollback leaves bounds that are too high, never too low). A commit
  by another process on the same file shows as a seq the process did not hand out; then
  the floor rises to it (every scope may have changed up to there).

The knowledge alone can be a moment late (a notification on its way), so a poll that
would be answered from it first asks the database one question on the side connection,
coalesced with the polls that came in meanwhile: the committed seq, commit number, clock
and epoch (sync_meta) and the clients' last mids (sync_clients), in one statement, no
BEGIN. The answer stands only if every commit it shows is known (SQLite: up to its seq;
PostgreSQL: up to its commit number): never "nothing new" when a
change the client can see committed before the poll came in. Anything else (unsure, the
side connection down, an error) answers None, and the engine opens a read session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from server import db
from server.core.actor import scopes_domains
from sync.engine import Quiet

log = logging.getLogger("fieldcrm")

CHANNEL = "fieldcrm_changes"
# A NOTIFY payload must stay under 8000 bytes: past this the commit names no scope, and
# listeners take it as "every scope, up to its seq".
MAX_PAYLOAD = 7000
# How long a poll waits for notifications of commits the database already shows.
CATCH_UP_S = 0.05
# A lag that long means notifications are not coming (a writer that sends none): start
# again from the database's seq.
STALL_S = 2.0


def scope_keys(scope: str) -> list[str]:
    """The keys a change in `scope` raises: the scope, and each pattern ending in "*" that
    matches it at a ":" (a manager's `review:TEAM:*`)."""
    keys = [scope]
    keys += [scope[: i + 1] + "*" for i, char in enumerate(scope) if char == ":"]
    return keys


def payload(seq: int, scopes: dict[str, int], commits: int, domains: dict[str, int]) -> str:
    """A commit's notification: its highest seq, its commit number, and each scope's
    highest seq (past the size limit, none: every scope of each of these domains, up to
    the domain's highest seq)."""
    message: dict[str, Any] = {"seq": seq, "commits": commits, "scopes": scopes}
    text = json.dumps(message, separators=(",", ":"))
    if len(text) > MAX_PAYLOAD:
        message.update(scopes=None, domains=domains)
        text = json.dumps(message, separators=(",", ":"))
        if len(text) > MAX_PAYLOAD:
            text = json.dumps({"seq": seq, "commits": commits, "scopes": None})
    return text


@dataclass
class _Ask:
    """Polls waiting for the next question to the database: their (user_id, client_id)s."""

    clients: set[tuple[str, str]] = field(default_factory=set)
    answer: asyncio.Future[tuple[dict[str, str], dict[tuple[str, str], int]]] | None = None


class Newest:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start again for another database (and event loop)."""
        self._next: _Ask | None = None
        self._asking = False
        self._moved: asyncio.Event | None = None  # set when a notification is heard
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self.forget()

    def forget(self) -> None:
        """Forget what is known (the side connection was lost: notifications may have
        been missed); polls take the ordinary path until it is primed again."""
        self.live = False  # primed from the database and kept up to date since
        self.priming = False
        # Notifications heard while priming: applied once primed (the seq it reads may
        # be older than some of them).
        self._early: list[str] = []
        self.floor = 0
        self.known = 0
        self.by_scope: dict[str, int] = {}
        # PostgreSQL: per domain, its counter when this process began listening (what a
        # scope of it heard nothing of since is at most), and the commit number of the
        # last notification heard (every commit up to it is known).
        self.floors: dict[str, int] = {}
        self.commits = 0
        self.per_domain = False  # primed with floors per domain (PostgreSQL)
        self.local_end = -1  # SQLite: the seq this process's last write session left
        self.behind_since: float | None = None

    # -- what it hears ---------------------------------------------------------------

    def heard(self, text: str) -> None:
        """A commit's notification (PostgreSQL), in commit order."""
        if not self.live:
            if self.priming:
                self._early.append(text)
            return
        try:
            message = json.loads(text)
            seq = int(message["seq"])
            commits = int(message["commits"])
            scopes = message["scopes"]
            domains = {str(d): int(top) for d, top in (message.get("domains") or {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("an unreadable change notification: starting again")
            self.forget()
            return
        if scopes is None and not domains:
            # Which domains it wrote is unknown: start again from the database's counters.
            self.forget()
            return
        if scopes is None:
            for domain, top in domains.items():
                self.floors[domain] = max(self.floors.get(domain, 0), top)
        else:
            self._note(scopes)
        self.known = max(self.known, seq)
        self.commits = max(self.commits, commits)
        self._wake()

    def _wake(self) -> None:
        if self._moved is not None:
            self._moved.set()
            self._moved = None

    def began(self, seq: int) -> None:
        """SQLite: this process's write session starts from `seq` under the writer's lock.
        Anything but where the last one left means another process (or a rollback) was
        there: every scope may have changed up to `seq`."""
        if db.is_postgres() or not self.live:
            return
        if seq != self.local_end:
            self._raise_floor(max(seq, self.known))
        self.local_end = seq

    def writing(self, seq: int, scopes: dict[str, int]) -> None:
        """SQLite: this process's write session is about to commit these changes."""
        if db.is_postgres() or not self.live:
            return
        self._note(scopes)
        self.known = max(self.known, seq)
        self.local_end = seq

    def _note(self, scopes: dict[str, int]) -> None:
        by_scope = self.by_scope
        for scope, seq in scopes.items():
            for key in scope_keys(scope):
                if by_scope.get(key, 0) < seq:
                    by_scope[key] = seq

    def _raise_floor(self, seq: int) -> None:
        self.floor = max(self.floor, seq)
        self.known = max(self.known, seq)
        self.by_scope = {k: v for k, v in self.by_scope.items() if v > self.floor}

    # -- what it answers -------------------------------------------------------------

    def newest(self, scopes: tuple[str, ...] | None) -> int | None:
        """The newest seq of these scopes (None: every scope) as far as known, or None when
        it cannot say (a pattern not at a ":"; on PostgreSQL, every scope, or scopes of no
        one team: seqs are in order within a team only, and a cursor is one per team).

        On PostgreSQL the scopes are a rep's or a manager's, all in their team's domain
        (a user's own scope is in their team's): what they heard nothing of is at most
        that domain's counter when this process began listening."""
        if self.per_domain:
            if scopes is None:
                return None
            domains = scopes_domains(scopes)
            if domains is None or len(domains) != 1:
                return None
            floor = self.floors.get(domains[0], 0)
        elif scopes is None:
            return max(self.known, self.floor)
        else:
            floor = self.floor
        top = floor
        for scope in scopes:
            if scope.endswith("*") and not scope.endswith(":*"):
                return None
            top = max(top, self.by_scope.get(scope, 0))
        return top

    async def quiet(
        self, scopes: tuple[str, ...] | None, user_id: str, client_id: str, after: int
    ) -> Quiet | None:
        """What an idle poll of these scopes at cursor seq `after` is answered, or None
        when this process cannot be sure that nothing the scopes see committed after it."""
        if not self.live:
            self._prime_soon()
            return None
        newest = self.newest(scopes)
        if newest is None or newest > after:
            return None
        try:
            meta, mids = await asyncio.wait_for(self._ask((user_id, client_id)), 1.0)
            seq = int(meta["seq"])
            commits = int(meta["commits"])
            state = (meta["epoch"], int(meta["purged_seq"]))
            hlc = (int(meta["hlc_ms"]), int(meta["hlc_counter"]))
        except (db.SideUnavailable, TimeoutError, KeyError, ValueError):
            return None
        if not self.live or not await self._caught_up(seq, commits):
            return None
        newest = self.newest(scopes)
        if newest is None or newest > after:
            return None
        return Quiet(
            epoch=state[0],
            seq=seq,
            purged_seq=state[1],
            hlc_max=hlc,
            last_mid=mids.get((user_id, client_id), 0),
            # PostgreSQL: the cursor stays at its team's seq (seqs are in order per team).
            moves=not self.per_domain,
        )

    async def _caught_up(self, seq: int, commits: int) -> bool:
        """Whether every commit the database shows (its seq on SQLite, its commit number
        on PostgreSQL, just read) is known."""
        if not self.per_domain:
            if self.known < seq:
                self._raise_floor(seq)  # another process's commit: no other word of it comes
            return True
        if self.commits >= commits:
            self.behind_since = None
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_S
        while self.live and self.commits < commits and loop.time() < deadline:
            if self._moved is None:
                self._moved = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), deadline - loop.time())
        if self.live and self.commits >= commits:
            self.behind_since = None
            return True
        if self.behind_since is None:
            self.behind_since = loop.time()
        elif loop.time() - self.behind_since > STALL_S and self.live:
            log.warning("change notifications lag behind the database: starting again")
            self.forget()
        return False

    async def _ask(
        self, client: tuple[str, str]
    ) -> tuple[dict[str, str], dict[tuple[str, str], int]]:
        """sync_meta and the last mids of `client` and of the polls that came in with it,
        read by a statement that starts after this call."""
        ask = self._next
        if ask is None:
            ask = self._next = _Ask(answer=asyncio.get_running_loop().create_future())
        ask.clients.add(client)
        assert ask.answer is not None
        future = ask.answer
        if not self._asking:
            self._asking = True
            self._start(self._run_asks())
        return await asyncio.shield(future)

    async def _run_asks(self) -> None:
        try:
            while self._next is not None:
                ask, self._next = self._next, None
                assert ask.answer is not None
                try:
                    answer = await _read_state(sorted(ask.clients))
                except BaseException as exc:
                    if not ask.answer.done():
                        ask.answer.set_exception(
                            exc if isinstance(exc, Exception) else db.SideUnavailable("stopped")
                        )
                    ask.answer.exception()  # retrieved: nobody may be waiting any more
                    if not isinstance(exc, Exception):
                        raise
                    continue
                if not ask.answer.done():
                    ask.answer.set_result(answer)
        finally:
            self._asking = False

    def _prime_soon(self) -> None:
        if self.priming:
            return
        self.priming = True
        self._start(self._prime())

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prime(self) -> None:
        """Start knowing: listen, then read the committed seq (which the notifications
        heard from then on continue)."""
        try:
            db.listen(CHANNEL, self.heard, self.forget)
            sql = "SELECT key, value FROM sync_meta WHERE key IN ('seq', 'commits')"
            if db.is_postgres():
                sql += " UNION ALL SELECT 'domain:' || domain, CAST(seq AS TEXT) FROM sync_counters"
            rows = await db.side_fetch(sql)
            read = {str(r["key"]): int(r["value"]) for r in rows}
        except Exception:  # noqa: BLE001 - not primed: polls take the ordinary path
            self.priming = False
            self._early = []
            return
        if self.priming:  # else forgotten meanwhile
            floors = {k.partition(":")[2]: v for k, v in read.items() if k.startswith("domain:")}
            self.primed(read["seq"], read.get("commits", 0), floors if db.is_postgres() else None)

    def primed(self, seq: int, commits: int = 0, floors: dict[str, int] | None = None) -> None:
        """Know from here: every scope's newest seq is at most `seq`, and on PostgreSQL at
        most its domain's counter in `floors`, and every commit up to number `commits` is
        known (read after listening), then what was heard while it was read."""
        self.floor = self.known = seq
        self.floors = dict(floors or {})
        self.per_domain = floors is not None
        self.commits = commits
        self.local_end = seq
        self.by_scope = {}
        self.live = True
        self.priming = False
        early, self._early = self._early, []
        for text in early:
            self.heard(text)


async def _read_state(
    clients: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], dict[tuple[str, str], int]]:
    """sync_meta and these clients' last mids, in one statement (one snapshot)."""
    if db.is_postgres():
        sql = (
            "SELECT key, value, NULL AS client_id, NULL::bigint AS last_mid FROM sync_meta"
            " UNION ALL SELECT user_id::text, NULL, client_id, last_mid FROM sync_clients"
            " WHERE (user_id, client_id) IN (SELECT * FROM unnest({}::uuid[], {}::text[]))"
        )
        args: list[Any] = [[c[0] for c in clients], [c[1] for c in clients]]
    else:
        keys = db.padded(clients)
        where = " OR ".join("(user_id = {} AND client_id = {})" for _ in keys)
        sql = (
            "SELECT key, value, NULL AS client_id, NULL AS last_mid FROM sync_meta"
            f" UNION ALL SELECT user_id, NULL, client_id, last_mid FROM sync_clients WHERE {where}"
        )
        args = [part for key in keys for part in key]
    rows = await db.side_fetch(sql, *args)
    meta = {str(r["key"]): str(r["value"]) for r in rows if r["client_id"] is None}
    mids = {
        (str(r["key"]), str(r["client_id"])): int(r["last_mid"])
        for r in rows
        if r["client_id"] is not None
    }
    return meta, mids


NEWEST = Newest()
db.ON_CONFIGURE.append(NEWEST.reset)
