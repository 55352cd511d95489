"""Issue 14, lost work: a write the server refuses is shown whole, in words, with its real
cause, survives a reload, and can be fixed and sent again by its writer or applied again by
a manager, on another account; the database upgrade that brought the `rejections` store
keeps what a version 2 phone held. SPEC 4 rule 12."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest
from e2e.test_screens import check_screen

# Longer than the 200 characters the old screen cut at, with a line break.
SUMMARY = (
    "Met Mme Laurent at the counter; she wants the LED panels for both workshops and asks "
    "for a quote with installation before the end of the month.\n"
    "Her brother-in-law runs the site in Villeurbanne and may order the same range if the "
    "first delivery goes well; call him in January. Parking is behind the shop, gate C."
)
SECOND = "Dropped the catalogue; the buyer was out, back on Thursday."


async def move(rest: Rest, account_id: str, owner_id: str) -> None:
    response = await rest.client.post(
        f"/api/accounts/{account_id}/reassign", json={"owner_id": owner_id}
    )
    assert response.status_code == 200, response.text


async def log_visit(app: App, account_id: str, outcome: str, summary: str) -> None:
    await app.account.open(account_id)
    await app.account.log_visit()
    await app.visit_form.fill(outcome=outcome, summary=summary)
    await app.visit_form.save()


def row_of(app: App, **data: str) -> Locator:
    selector = "".join(f'[data-{k}="{v}"]' for k, v in data.items())
    return app.page.locator(f"[data-testid=rejected-row]{selector}")


def field_of(row: Locator, name: str) -> Locator:
    return row.locator(f'[data-testid=rejected-field][data-field="{name}"]')


async def open_rejected(app: App) -> None:
    await app.go("#/rejected")
    await app.expect_screen("rejected")
    await expect(app.tid("rejected-count")).to_be_visible()


async def test_a_refused_visit_is_shown_whole_fixed_and_applied_again(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    server.add_user("boss", role="manager", team="north")
    server.add_user("sam", team="south")
    server.add_user("root", role="admin", team="hq")
    alice_rest = await Rest.login(server.url, "alice")
    admin = await Rest.login(server.url, "root")
    sam = await Rest.login(server.url, "sam")
    try:
        moved = await alice_rest.create("accounts", name="Électricité Laurent", city="Lyon")
        other = await alice_rest.create("accounts", name="Boulangerie Martin", city="Paris")
        app = await phones.signed_in(server.url, "alice", controlled=False)

        # The account moves to another team while Alice is offline; she logs two visits.
        await app.set_offline(True)
        await app.expect_badge("offline")
        await move(admin, moved["id"], sam.user["id"])
        await log_visit(app, moved["id"], "met", SUMMARY)
        await log_visit(app, moved["id"], "no_answer", SECOND)
        await app.set_offline(False)
        status = await app.synced()
        assert status["rejected"] == 2, status
        indicator = app.tid("rejected-indicator")
        await expect(indicator).to_have_attribute("data-count", "2")
        await expect(indicator).to_have_text("2 rejected")

        # The server's rows replaced the phone's copies, which carried the account's name.
        assert await app.meta("rejected") == []
        rows = await app.rows("rejections")
        assert len(rows) == 2
        assert {r["_about"]["account_name"] for r in rows} == {"Électricité Laurent"}

        await indicator.click()
        await app.expect_screen("rejected")
        await expect(app.tid("rejected-count")).to_have_attribute("data-count", "2")
        first = app.tid("rejected-row").filter(has_text="LED panels")
        await expect(first).to_have_attribute("data-source", "server")
        await expect(first).to_have_attribute("data-error", "not_found")
        title = first.get_by_test_id("rejected-title")
        await expect(title).to_contain_text("Visit at Électricité Laurent, ")
        await expect(first.get_by_test_id("rejected-detail")).to_contain_text(
            'The account "Électricité Laurent" was moved to another team'
        )
        await expect(first.get_by_test_id("rejected-who")).to_contain_text("Written by you")
        await expect(field_of(first, "summary")).to_have_text(SUMMARY)
        await expect(field_of(first, "outcome")).to_have_text("Met")
        await expect(field_of(first, "account_id")).to_have_text("Électricité Laurent")
        assert moved["id"] not in await first.inner_text()  # names, never raw ids
        await check_screen(app, artifacts, "rejected", "rejected-row", "rejected-fix")
        for percent in (150, 200):
            await app.page.evaluate(
                "(p) => { document.documentElement.style.fontSize = `${p}%`; }", percent
            )
            await check_screen(app, artifacts, f"rejected-text{percent}", "rejected-fix")
            await app.page.screenshot(
                path=artifacts / f"screen-rejected-text{percent}-full.png", full_page=True
            )
        await app.page.evaluate("() => { document.documentElement.style.fontSize = ''; }")

        # A reload (offline, even) keeps them.
        await app.wait_controlled()
        await app.set_offline(True)
        await app.reload()
        await open_rejected(app)
        await expect(app.tid("rejected-row")).to_have_count(2)
        await expect(field_of(first, "summary")).to_have_text(SUMMARY)
        await app.set_offline(False)

        # Fix and send again: the account is not on the phone, so she picks another.
        await first.get_by_test_id("rejected-fix").click()
        await expect(first.get_by_test_id("rejected-message")).to_contain_text("Choose")
        await first.get_by_test_id("rejected-fix-account").select_option(other["id"])
        await first.get_by_test_id("rejected-fix").click()
        await expect(app.tid("visit-form")).to_be_visible()
        await expect(app.tid("fix-notice")).to_contain_text("moved to another team")
        await expect(app.tid("visit-account")).to_have_text("Boulangerie Martin")
        await expect(app.tid("visit-outcome")).to_have_value("met")
        await expect(app.tid("visit-summary")).to_have_value(SUMMARY)
        await app.visit_form.save()
        await app.synced()
        [landed] = await alice_rest.list("visits", account_id=other["id"])
        assert (landed["summary"], landed["outcome"]) == (SUMMARY, "met")
        first_id = next(r["id"] for r in rows if r["fields"]["summary"] == SUMMARY)
        second_id = next(r["id"] for r in rows if r["id"] != first_id)
        await open_rejected(app)
        await expect(app.tid("rejected-row")).to_have_count(1)
        await expect(indicator).to_have_attribute("data-count", "1")
        fixed = [r for r in await app.rows("rejections") if r["id"] == first_id]
        assert fixed[0]["resolved"] is True

        # Her manager sees the other one, whose it is, and applies it to another account.
        boss = await phones.signed_in(server.url, "boss", controlled=False)
        await open_rejected(boss)
        mine = row_of(boss, id=second_id)
        await expect(mine.get_by_test_id("rejected-who")).to_contain_text("Written by alice")
        await expect(mine.get_by_test_id("rejected-title")).to_contain_text(
            "Visit at an account not on this phone"
        )
        await expect(mine.get_by_test_id("rejected-detail")).to_contain_text("Électricité Laurent")
        # Offline, it says so and sends nothing.
        await boss.set_offline(True)
        await mine.get_by_test_id("rejected-apply").click()
        await expect(mine.get_by_test_id("rejected-apply-message")).to_contain_text(
            "needs a connection"
        )
        await boss.set_offline(False)
        await mine.get_by_test_id("rejected-apply-account").select_option(other["id"])
        await check_screen(boss, artifacts, "rejected-manager", "rejected-apply")
        await mine.get_by_test_id("rejected-apply").click()
        await expect(boss.tid("rejected-empty")).to_be_visible()
        visits = await alice_rest.list("visits", account_id=other["id"])
        applied = [v for v in visits if v["summary"] == SECOND]
        assert len(applied) == 1 and applied[0]["user_id"] == alice_rest.user["id"]

        # Alice's phone follows: nothing left to resolve; resolved ones on demand.
        await app.synced()
        await expect(indicator).to_be_hidden()
        await open_rejected(app)
        await expect(app.tid("rejected-empty")).to_be_visible()
        await app.tid("rejected-show-resolved").check()
        await expect(app.tid("rejected-row")).to_have_count(2)
        await expect(row_of(app, resolved="yes")).to_have_count(2)
    finally:
        for rest in (alice_rest, admin, sam):
            await rest.close()


async def test_mark_resolved_and_a_copy_the_server_keeps_no_row_of(
    server: Server, phones: Phones
) -> None:
    """A write refused for its clock (invalid_hlc) is kept by the phone alone, until its
    user dismisses it (two taps); one the server keeps is marked resolved through sync."""
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        account = await rest.create("accounts", name="Fromagerie Roux", city="Lyon")
        app = await phones.signed_in(server.url, "alice", controlled=False)
        await app.page.evaluate(
            """async ([id]) => {
              const records = await import("/js/records.js");
              const db = await import("/js/db.js");
              await records.saveWrites([{ table: "accounts", id, op: "upsert",
                fields: { website: "not a website at all" } }]);
              await db.write(["outbox"], async (s) => {
                const [entry] = await s.outbox.getAll();
                await s.outbox.put({ ...entry, hlc: [1, 0] });  // a clock from 1970
              });
            }""",
            [account["id"]],
        )
        await app.save("accounts", account["id"], status="nonsense")
        status = await app.synced()
        assert status["rejected"] == 2, status
        await open_rejected(app)
        copy = row_of(app, source="phone")
        await expect(copy).to_have_attribute("data-error", "invalid_hlc")
        await expect(copy.get_by_test_id("rejected-detail")).to_contain_text("clock was wrong")
        await expect(copy.get_by_test_id("rejected-note")).to_contain_text("keeps no copy")
        await expect(copy.get_by_test_id("rejected-title")).to_have_text(
            "Change to the account Fromagerie Roux"
        )
        await expect(field_of(copy, "website")).to_have_text("not a website at all")
        kept = row_of(app, source="server")
        await expect(kept.get_by_test_id("rejected-detail")).to_contain_text("status")
        await expect(field_of(kept, "status")).to_have_text("nonsense")

        await kept.get_by_test_id("rejected-resolve").click()
        await expect(kept).to_have_count(0)
        dismiss = copy.get_by_test_id("rejected-dismiss")
        await dismiss.click()
        await expect(dismiss).to_have_text("Tap again to dismiss")
        await dismiss.click()
        await expect(app.tid("rejected-empty")).to_be_visible()
        await app.synced()
        [row] = await app.rows("rejections")
        assert row["resolved"] is True
        assert await app.meta("rejected") == []
        await expect(app.tid("rejected-indicator")).to_be_hidden()
    finally:
        await rest.close()


# The schema of database version 2 (version 1 and the drafts store), as js/db.js made it
# before the rejections store.
MAKE_VERSION_2 = """async ({ stores, meta }) => {
  const TABLES = ["accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts"];
  const BY_ACCOUNT = ["contacts", "visits", "notes", "tasks", "deals", "conflicts"];
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open("fieldcrm", 2);
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
      db.createObjectStore("drafts", { keyPath: "key" });
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


async def test_the_rejections_upgrade_keeps_rows_outbox_drafts_and_refusals(
    server: Server, phones: Phones
) -> None:
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        await rest.create("accounts", name="Boulangerie Martin", city="Paris")
        client_id = str(uuid.uuid4())
        response = await rest.sync(
            {"protocol": 1, "client_id": client_id, "cursor": None, "mutations": []}
        )
        assert response.status_code == 200, response.text
        pulled = response.json()
        # The version 2 app sent a note with a clock from 1970; the server refused it.
        note = {"account_id": pulled["changes"][0]["id"], "body": "A note the server refused."}
        wrong = {"mid": 1, "table": "notes", "id": str(uuid.uuid4()), "op": "upsert"}
        response = await rest.sync(
            {
                "protocol": 1,
                "client_id": client_id,
                "cursor": pulled["cursor"],
                "mutations": [{**wrong, "fields": note, "base_seq": None, "hlc": [1, 0]}],
            }
        )
        assert response.status_code == 200, response.text
        [result] = response.json()["ack"]["results"]
        assert result["error"]["error"] == "invalid_hlc"
        pulled["cursor"] = response.json()["cursor"]
        token = rest.client.headers["Authorization"].removeprefix("Bearer ")
        [account] = [
            {**c["row"], "_base": c["row"], "_seq": c["seq"]}
            for c in pulled["changes"]
            if c["table"] == "accounts" and c["op"] == "put"
        ]
        now_ms = int(time.time() * 1000)
        visit_id = str(uuid.uuid4())
        fields = {
            "account_id": account["id"],
            "started_at": "2030-05-06T09:00:00+00:00",
            "summary": "Logged before the update.",
        }
        entry = {
            "key": 1,
            "mid": 2,
            "table": "visits",
            "id": visit_id,
            "op": "upsert",
            "fields": fields,
            "base_seq": None,
            "hlc": [now_ms, 0],
        }
        # A refusal the version 2 app kept in meta (its format: no clock, no `about`).
        refused: dict[str, Any] = {
            **wrong,
            "fields": note,
            "error": result["error"],
            "at": now_ms - 60_000,
        }
        draft = {
            "key": f"note/new/{account['id']}",
            "kind": "note",
            "route": f"#/note/new?account={account['id']}",
            "account_id": account["id"],
            "record_id": None,
            "values": {"body": "Half a note."},
            "preview": "Half a note.",
            "saved_at": now_ms,
        }
        meta = {
            "client_id": client_id,
            "next_mid": 3,
            "hlc": [now_ms, 0],
            "cursor": pulled["cursor"],
            "token": token,
            "user": rest.user,
            "last_sync_at": now_ms,
            "rejected": [refused],
        }
        visit = {"id": visit_id, **fields, "_base": None, "_seq": None}
        app = await phones.open(server.url)
        await app.page.route(f"{server.url}/blank", lambda route: route.fulfill(body=BLANK))
        await app.page.goto(f"{server.url}/blank")
        await app.page.evaluate(
            MAKE_VERSION_2,
            {
                "stores": {
                    "accounts": [account],
                    "visits": [visit],
                    "outbox": [entry],
                    "drafts": [draft],
                },
                "meta": meta,
            },
        )
        assert (await app.page.evaluate(SCHEMA))["version"] == 2

        async with app.sync_held():
            await app.open("#/rejected")
            schema = await app.page.evaluate(SCHEMA)
            # On to the newest: version 3 made `rejections`, 4 `attachments` and `blobs`.
            assert schema["version"] >= 4 and "rejections" in schema["stores"]
            assert {"attachments", "blobs"} <= set(schema["stores"])
            assert await app.rows("accounts") == [account]
            assert await app.rows("visits") == [visit]
            assert await app.outbox() == [entry]
            assert await app.saved_drafts() == [draft]
            for key, value in meta.items():
                assert await app.meta(key) == value, key
            # The refusal the old app kept is on the new screen, whole.
            copy = row_of(app, source="phone")
            await expect(copy.get_by_test_id("rejected-title")).to_have_text(
                "Note on Boulangerie Martin"
            )
            await expect(field_of(copy, "body")).to_have_text("A note the server refused.")
            await expect(app.tid("rejected-indicator")).to_have_attribute("data-count", "1")

        # The visit written before the update still goes to the server, once; the copy of
        # the refusal (which the server never kept) stays.
        await app.synced()
        [on_server] = await rest.list("visits", account_id=account["id"])
        assert on_server["id"] == visit_id
        assert await app.meta("rejected") == [refused]
        # Fix and send again: the note form, filled, as a new note.
        await open_rejected(app)
        await copy.get_by_test_id("rejected-fix").click()
        await expect(app.tid("note-body")).to_have_value("A note the server refused.")
        await expect(app.tid("fix-notice")).to_contain_text("clock was wrong")
        await app.tid("note-save").click()
        await expect(app.tid("note-form")).to_have_count(0)
        await app.synced()
        notes = await rest.list("notes", account_id=account["id"])
        assert [n["body"] for n in notes] == ["A note the server refused."]
        assert await app.meta("rejected") == []
        assert [d["key"] for d in await app.saved_drafts()] == [draft["key"]]
        width = await app.scroll_width()
        assert width <= PHONE["width"]
    finally:
        await rest.close()
