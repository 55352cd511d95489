"""The database upgrade that brought the drafts store (version 2) keeps every row, meta
value and outbox entry of the version before, and what was queued still syncs."""

from __future__ import annotations

import time
import uuid
from operator import itemgetter

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import Phones, Rest

# The schema of database version 1, as js/db.js made it before the drafts store: the old
# app's upgrade, to build the database a phone has when the new version first opens.
MAKE_VERSION_1 = """async ({ stores, meta }) => {
  const TABLES = ["accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts"];
  const BY_ACCOUNT = ["contacts", "visits", "notes", "tasks", "deals", "conflicts"];
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open("fieldcrm", 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const table of TABLES) {
        const store = db.createObjectStore(table, { keyPath: "id" });
        if (BY_ACCOUNT.includes(table)) store.createIndex("account_id", "account_id");
        if (table === "conflicts") store.createIndex("record_id", "record_id");
      }
      const outbox = db.createObjectStore("outbox", { keyPath: "key", autoIncrement: true });
      outbox.createIndex("mid", "mid", { unique: true });
      outbox.createIndex("row", ["table", "id"]);
      db.createObjectStore("meta");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  await new Promise((resolve, reject) => {
    const tx = db.transaction([...Object.keys(stores), "meta"], "readwrite");
    for (const [name, rows] of Object.entries(stores)) {
      for (const row of rows) tx.objectStore(name).put(row);
    }
    for (const [key, value] of Object.entries(meta)) tx.objectStore("meta").put(value, key);
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}"""

BLANK = '<!doctype html><link rel="icon" href="data:,"><title>blank</title>'

SCHEMA = """() => new Promise((resolve, reject) => {
  const req = indexedDB.open("fieldcrm");
  req.onsuccess = () => {
    const db = req.result;
    resolve({ version: db.version, stores: [...db.objectStoreNames].sort() });
    db.close();
  };
  req.onerror = () => reject(req.error);
})"""


async def test_the_drafts_upgrade_keeps_rows_and_outbox(server: Server, phones: Phones) -> None:
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        await rest.create("accounts", name="Boulangerie Martin", city="Paris")
        await rest.create("accounts", name="Fromagerie Roux", city="Lyon")
        client_id = str(uuid.uuid4())
        response = await rest.sync(
            {"protocol": 1, "client_id": client_id, "cursor": None, "mutations": []}
        )
        assert response.status_code == 200, response.text
        pulled = response.json()
        token = rest.client.headers["Authorization"].removeprefix("Bearer ")

        # The phone on version 1: the pulled rows, and a visit logged offline, not sent.
        accounts = [
            {**c["row"], "_base": c["row"], "_seq": c["seq"]}
            for c in pulled["changes"]
            if c["table"] == "accounts" and c["op"] == "put"
        ]
        assert len(accounts) == 2
        visit_id = str(uuid.uuid4())
        now_ms = int(time.time() * 1000)
        fields = {
            "account_id": accounts[0]["id"],
            "started_at": "2030-05-06T09:00:00+00:00",
            "ended_at": "2030-05-06T09:20:00+00:00",
            "outcome": "met",
            "summary": "Logged before the update.",
        }
        entry = {
            "key": 1,
            "mid": 1,
            "table": "visits",
            "id": visit_id,
            "op": "upsert",
            "fields": fields,
            "base_seq": None,
            "hlc": [now_ms, 0],
        }
        visit = {"id": visit_id, **fields, "_base": None, "_seq": None}
        meta = {
            "client_id": client_id,
            "next_mid": 2,
            "hlc": [now_ms, 0],
            "cursor": pulled["cursor"],
            "token": token,
            "user": rest.user,
            "last_sync_at": now_ms,
        }
        app = await phones.open(server.url)
        # A blank page of the app's origin (answered by the test, not the server): the
        # database is built there before the app's code ever runs.
        await app.page.route(f"{server.url}/blank", lambda route: route.fulfill(body=BLANK))
        await app.page.goto(f"{server.url}/blank")
        await app.page.evaluate(
            MAKE_VERSION_1,
            {"stores": {"accounts": accounts, "visits": [visit], "outbox": [entry]}, "meta": meta},
        )
        assert await app.page.evaluate(SCHEMA) == {
            "version": 1,
            "stores": sorted(
                ["accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts"]
                + ["outbox", "meta"]
            ),
        }

        # The new app opens it (sync held, so what is checked is what the upgrade kept).
        async with app.sync_held():
            await app.open("#/today")
            schema = await app.page.evaluate(SCHEMA)
            assert schema["version"] == 2
            assert "drafts" in schema["stores"]
            by_id = itemgetter("id")
            assert sorted(await app.rows("accounts"), key=by_id) == sorted(accounts, key=by_id)
            assert await app.rows("visits") == [visit]
            assert await app.outbox() == [entry]
            for key, value in meta.items():
                assert await app.meta(key) == value, key
            await expect(app.page.locator("body")).to_have_attribute("data-signed-in", "yes")
            await app.expect_pending(1)

        # The visit written before the update still goes to the server, once.
        await app.synced()
        [on_server] = await rest.list("visits", account_id=accounts[0]["id"])
        assert (on_server["id"], on_server["summary"]) == (visit_id, "Logged before the update.")
    finally:
        await rest.close()
