"""Exactly-once bookkeeping: each client's last applied mid and its latest results; and
the device report (SPEC 4 rule 14): when each client last synced, the last `device` object
it sent, and how many of its writes the server applied.

A `Clients` belongs to one session (one transaction). It reads what it needs once, keeps
what the transaction has applied, and writes it in bulk with the session's other held-back
rows, so the mids commit with the writes they answer for, or not at all; a write session's
device reports commit with it too.

A sync with nothing to push runs in a read transaction, in parallel with others, and must
not take the writer's lock: its report waits in `PENDING_REPORTS` (the newest per client)
and `write_pending_reports` writes them all in one transaction, about once a second
(`run_report_writer`) or before a report is read in this process
(docs/decisions/2026-12-06-device-reports.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from server import db
from server.core.rows import IN_CHUNK, chunks

RESULTS_KEPT = 5000  # per client: replays older than this answer a generic "applied"
REPORT_INTERVAL_S = 1.0  # how long a pull-only sync's report may wait to be written

log = logging.getLogger("fieldcrm")

# (user_id, client_id) -> (last sync, unix ms; the device object as JSON, None: not sent)
Report = tuple[int, str | None]
PENDING_REPORTS: dict[tuple[str, str], Report] = {}
db.ON_CONFIGURE.append(PENDING_REPORTS.clear)  # reports of another database
# One write of the pending reports at a time in each event loop: a reader that asks for
# them written waits for one already taken out of PENDING_REPORTS and not yet committed.
_WRITING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)

_COLUMNS = ("user_id", "client_id", "last_mid", "writes", "last_sync_ms", "device")
# A row's mid only goes up; writes add up; the newest sync wins, and keeps the last device
# object when it sent none (rule 14).
_UPSERT = (
    "ON CONFLICT (user_id, client_id) DO UPDATE SET"
    " last_mid = CASE WHEN excluded.last_mid > sync_clients.last_mid"
    " THEN excluded.last_mid ELSE sync_clients.last_mid END,"
    " writes = sync_clients.writes + excluded.writes,"
    " device = CASE WHEN excluded.device IS NOT NULL AND (sync_clients.last_sync_ms IS NULL"
    " OR excluded.last_sync_ms >= sync_clients.last_sync_ms)"
    " THEN excluded.device ELSE sync_clients.device END,"
    " last_sync_ms = CASE WHEN excluded.last_sync_ms IS NULL THEN sync_clients.last_sync_ms"
    " WHEN sync_clients.last_sync_ms IS NULL OR excluded.last_sync_ms > sync_clients.last_sync_ms"
    " THEN excluded.last_sync_ms ELSE sync_clients.last_sync_ms END"
)


def merge_report(reports: dict[tuple[str, str], Report], key: tuple[str, str], new: Report) -> None:
    """Keep the newer of two reports of one client, and the last device object sent."""
    old = reports.get(key)
    if old is None:
        reports[key] = new
        return
    newer, older = (new, old) if new[0] >= old[0] else (old, new)
    reports[key] = (newer[0], newer[1] if newer[1] is not None else older[1])


async def write_pending_reports() -> None:
    """Write the reports of pull-only syncs waiting in this process, in one transaction.
    If that fails they wait for the next try (newer ones of the same clients win). Once
    it returns, every report this process had when it was called is committed, also those
    another call was writing (call it outside any transaction)."""
    loop = asyncio.get_running_loop()
    writing = _WRITING.get(loop) or _WRITING.setdefault(loop, asyncio.Lock())
    async with writing:
        if not PENDING_REPORTS:
            return
        reports = dict(PENDING_REPORTS)
        PENDING_REPORTS.clear()
        try:
            # Every lane's lock: beside a team's writers, which write the same rows a
            # statement at a time, rows locked in two orders could deadlock.
            async with db.write_transaction():
                await _upsert({}, {}, reports)
        except BaseException:
            for key, report in reports.items():
                merge_report(PENDING_REPORTS, key, report)
            raise


async def run_report_writer() -> None:
    """Write pull-only syncs' reports about once a second, until cancelled; then once more."""
    try:
        while True:
            await asyncio.sleep(REPORT_INTERVAL_S)
            try:
                await write_pending_reports()
            except Exception:
                log.exception("writing device reports failed; trying again")
    finally:
        with contextlib.suppress(Exception):
            await write_pending_reports()


async def _upsert(
    mids: dict[tuple[str, str], int],
    writes: dict[tuple[str, str], int],
    reports: dict[tuple[str, str], Report],
) -> None:
    rows = []
    for key in sorted({*mids, *reports}):
        last_sync, device = reports.get(key, (None, None))
        rows.append([*key, mids.get(key, 0), writes.get(key, 0), last_sync, device])
    await db.insert_rows("sync_clients", _COLUMNS, rows, upsert=_UPSERT)


class Clients:
    def __init__(self) -> None:
        # Each client's last mid as this transaction has it, and what is still to write.
        self._last_mids: dict[tuple[str, str], int] = {}
        self._saved: dict[tuple[str, str], int] = {}
        self._writes: dict[tuple[str, str], int] = {}
        self._reports: dict[tuple[str, str], Report] = {}
        self._results: list[list[Any]] = []

    async def load(self, clients: Sequence[tuple[str, str]]) -> None:
        """Read the last mids of these (user_id, client_id)s not read yet, in bulk."""
        wanted = sorted({key for key in clients if key not in self._last_mids})
        for chunk in chunks(wanted, IN_CHUNK // 2):
            if db.is_postgres():
                where = "(user_id, client_id) IN (SELECT * FROM unnest({}::uuid[], {}::text[]))"
                args: list[Any] = [[key[0] for key in chunk], [key[1] for key in chunk]]
            else:
                keys = db.padded(chunk)
                where = " OR ".join("(user_id = {} AND client_id = {})" for _ in keys)
                args = [part for key in keys for part in key]
            rows = await db.fetch(
                f"SELECT user_id, client_id, last_mid FROM sync_clients WHERE {where}", *args
            )
            found = {(str(r["user_id"]), r["client_id"]): int(r["last_mid"]) for r in rows}
            for key in chunk:
                self._last_mids[key] = found.get(key, 0)

    async def last_mid(self, user_id: str, client_id: str) -> int:
        key = (user_id, client_id)
        if key not in self._last_mids:
            await self.load([key])
        return self._last_mids[key]

    async def stored_results(
        self, user_id: str, client_id: str, mids: Sequence[int]
    ) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for chunk in chunks(mids, IN_CHUNK):
            where, args = db.any_of("mid", chunk)
            rows = await db.fetch(
                "SELECT mid, result FROM sync_results WHERE user_id = {} AND client_id = {}"
                f" AND {where}",
                user_id,
                client_id,
                *args,
            )
            found.update({int(r["mid"]): r["result"].encode() for r in rows})
        return found

    def save(
        self,
        user_id: str,
        client_id: str,
        last_mid: int,
        results: list[tuple[int, bytes]],
        applied: int = 0,
    ) -> None:
        """Note the client's new last mid, its results and how many of them were applied
        or merged, for `write`."""
        key = (user_id, client_id)
        self._last_mids[key] = self._saved[key] = last_mid
        self._writes[key] = self._writes.get(key, 0) + applied
        self._results += [[user_id, client_id, mid, result.decode()] for mid, result in results]

    def note_sync(self, user_id: str, client_id: str, device: str | None, at_ms: int) -> None:
        """Note that the client synced at `at_ms` with this device object (JSON; None: it
        sent none), for `write`."""
        merge_report(self._reports, (user_id, client_id), (at_ms, device))

    async def write(self) -> None:
        """Write the noted mids, writes, reports and results, and drop results older than
        RESULTS_KEPT."""
        clients, self._saved = self._saved, {}
        writes, self._writes = self._writes, {}
        reports, self._reports = self._reports, {}
        results, self._results = self._results, []
        # A client that only reported (its mutations all replays) keeps its mid: the
        # upsert never lowers one.
        mids = {key: self._last_mids.get(key, 0) for key in reports} | clients
        await _upsert(mids, writes, reports)
        await db.insert_rows("sync_results", ("user_id", "client_id", "mid", "result"), results)
        for (user_id, client_id), last_mid in clients.items():
            if last_mid > RESULTS_KEPT:
                await db.fetch(
                    "DELETE FROM sync_results WHERE user_id = {} AND client_id = {} AND mid <= {}",
                    user_id,
                    client_id,
                    last_mid - RESULTS_KEPT,
                )


async def devices_of(user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The clients of these users with their reports (rule 14): user_id, client_id,
    last_sync_ms (None: not since reports began), device (the JSON text, or None) and
    writes. Call `write_pending_reports` first to see this process's latest."""
    found: list[dict[str, Any]] = []
    for chunk in chunks(user_ids, IN_CHUNK):
        where, args = db.any_of("user_id", chunk)
        found += await db.fetch(
            "SELECT user_id, client_id, last_sync_ms, device, writes FROM sync_clients"
            f" WHERE {where}",
            *args,
        )
    return found
