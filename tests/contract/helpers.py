"""Talking sync to the server the way a device does."""

from __future__ import annotations

import time
import uuid
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


def mutation(
    mid: int,
    table: str,
    record_id: str,
    fields: dict[str, Any] | None = None,
    *,
    op: str = "upsert",
    base_seq: int | None = None,
    hlc: tuple[int, int] | None = None,
) -> dict[str, Any]:
    return {
        "mid": mid,
        "table": table,
        "id": record_id,
        "op": op,
        "fields": fields or {},
        "base_seq": base_seq,
        "hlc": list(hlc or (now_ms(), 0)),
    }


def new_id() -> str:
    return str(uuid.uuid4())


class Device:
    """One install of the app: a client_id, its mid counter and its cursor."""

    def __init__(self, client: Any, login: Any) -> None:
        self.client = client
        self.login = login
        self.client_id = new_id()
        self.next_mid = 1
        self.cursor: str | None = None
        self.rows: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.seqs: dict[tuple[str, str], int] = {}

    def write(
        self,
        table: str,
        record_id: str,
        fields: dict[str, Any] | None = None,
        *,
        op: str = "upsert",
        hlc: tuple[int, int] | None = None,
        base_seq: int | None = None,
    ) -> dict[str, Any]:
        m = mutation(
            self.next_mid,
            table,
            record_id,
            fields,
            op=op,
            hlc=hlc,
            base_seq=base_seq if base_seq is not None else self.seqs.get((table, record_id)),
        )
        self.next_mid += 1
        return m

    async def raw(self, body: dict[str, Any], **kwargs: Any) -> Any:
        return await self.client.post(
            "/api/sync/v1", json=body, headers=self.login.headers, **kwargs
        )

    async def sync(self, *mutations: dict[str, Any], pull_limit: int = 500) -> dict[str, Any]:
        """One round trip; applies the pulled changes to the local rows."""
        body = {
            "protocol": 1,
            "client_id": self.client_id,
            "cursor": self.cursor,
            "pull_limit": pull_limit,
            "mutations": list(mutations),
        }
        response = await self.raw(body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        for change in data["changes"]:
            key = (change["table"], change["id"])
            if change["op"] == "put":
                self.rows[key] = change["row"]
                self.seqs[key] = change["seq"]
            else:
                self.rows.pop(key, None)
        self.cursor = data["cursor"]
        return data

    async def pull_all(self) -> list[dict[str, Any]]:
        changes = []
        while True:
            data = await self.sync()
            changes += data["changes"]
            if not data["has_more"]:
                return changes

    def row(self, table: str, record_id: str) -> dict[str, Any] | None:
        return self.rows.get((table, record_id))

    def conflicts(self) -> list[dict[str, Any]]:
        return [r for (t, _), r in self.rows.items() if t == "conflicts" and r is not None]
