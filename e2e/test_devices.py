"""The app reports its state with every sync (SPEC 4 rule 14): what it still holds unsent
once the request's writes are counted as sent, since when, its version and platform; and
the team's manager reads it back from the server (`GET /api/team/devices`)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Request

from e2e.conftest import Server
from e2e.pages import Phones, Rest

SW = Path(__file__).resolve().parent.parent / "pwa" / "sw.js"
QUEUED = 501  # one more than the app sends in one request

QUEUE = """async (count) => {
  const records = await import("/js/records.js");
  const writes = [];
  for (let n = 0; n < count; n += 1) {
    writes.push({ table: "accounts", id: crypto.randomUUID(), op: "upsert",
                  fields: { name: `Shop ${n}` } });
  }
  await records.saveWrites(writes);
}"""


async def test_the_manager_sees_each_phone_and_what_it_holds(
    server: Server, phones: Phones
) -> None:
    server.add_user("alice", team="north")
    server.add_user("boss", role="manager", team="north")
    version = re.search(r'const VERSION = "([0-9a-f]+)"', SW.read_text())
    assert version
    app = await phones.signed_in(server.url, "alice")

    # 501 writes made offline go out in two requests: the first says one is still queued,
    # and since when; the second that nothing is.
    await app.set_offline(True)
    await app.page.evaluate(QUEUE, QUEUED)
    outbox = await app.outbox()
    assert len(outbox) == QUEUED
    sent: list[dict[str, Any]] = []

    def keep(request: Request) -> None:
        if request.url.endswith("/api/sync/v1") and request.method == "POST":
            sent.append(request.post_data_json)

    app.page.on("request", keep)
    await app.set_offline(False)
    await app.synced()
    with_writes = [body for body in sent if body["mutations"]]
    assert [len(body["mutations"]) for body in with_writes] == [500, 1]
    first, last = (body["device"] for body in with_writes)
    assert first["pending"] == 1
    oldest = datetime.fromisoformat(first["oldest_pending_at"].replace("Z", "+00:00"))
    assert int(oldest.timestamp() * 1000) == outbox[-1]["hlc"][0]
    assert (last["pending"], last["oldest_pending_at"]) == (0, None)
    for body in sent:
        assert body["device"]["app_version"] == version.group(1)
        assert body["device"]["platform"]

    boss = await Rest.login(server.url, "boss")
    try:
        response = await boss.client.get("/api/team/devices")
        assert response.status_code == 200, response.text
        [device] = response.json()["devices"]
        client_id = await app.meta("client_id")
        assert device["client_id"] == client_id and device["username"] == "alice"
        assert (device["pending"], device["oldest_pending_at"]) == (0, None)
        assert device["app_version"] == version.group(1)
        assert device["platform"] == sent[-1]["device"]["platform"]
        assert device["writes"] == QUEUED
        assert device["last_sync_at"]
        assert uuid.UUID(device["user_id"])
    finally:
        await boss.client.aclose()
