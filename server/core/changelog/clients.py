"""Exactly-once bookkeeping: each client's last applied mid and its latest results.

A `Clients` belongs to one session (one transaction). It reads what it needs once, keeps
what the transaction has applied, and writes it in bulk with the session's other held-back
rows, so the mids commit with the writes they answer for, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server import db
from server.core.rows import IN_CHUNK, chunks

RESULTS_KEPT = 5000  # per client: replays older than this answer a generic "applied"


class Clients:
    def __init__(self) -> None:
        # Each client's last mid as this transaction has it, and what is still to write.
        self._last_mids: dict[tuple[str, str], int] = {}
        self._saved: dict[tuple[str, str], int] = {}
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
        self, user_id: str, client_id: str, last_mid: int, results: list[tuple[int, bytes]]
    ) -> None:
        """Note the client's new last mid and its results, for `write`."""
        key = (user_id, client_id)
        self._last_mids[key] = self._saved[key] = last_mid
        self._results += [[user_id, client_id, mid, result.decode()] for mid, result in results]

    async def write(self) -> None:
        """Write the noted mids and results, and drop results older than RESULTS_KEPT."""
        clients, self._saved = self._saved, {}
        results, self._results = self._results, []
        await db.insert_rows(
            "sync_clients",
            ("user_id", "client_id", "last_mid"),
            [[*key, last_mid] for key, last_mid in clients.items()],
            upsert="ON CONFLICT (user_id, client_id) DO UPDATE SET last_mid = excluded.last_mid",
        )
        await db.insert_rows("sync_results", ("user_id", "client_id", "mid", "result"), results)
        for (user_id, client_id), last_mid in clients.items():
            if last_mid > RESULTS_KEPT:
                await db.fetch(
                    "DELETE FROM sync_results WHERE user_id = {} AND client_id = {} AND mid <= {}",
                    user_id,
                    client_id,
                    last_mid - RESULTS_KEPT,
                )
