"""Issue 14, never lose a rep's work: a half-filled visit (check-in included), note or task
stays on the phone as a draft until it is saved or discarded, across other screens, a
reload offline, and the app being killed; saving takes the draft away with the record and
its outbox entry in one transaction; the database upgrade that brought the drafts store
keeps every row and the outbox of the version before."""

from __future__ import annotations

import time
import uuid
from operator import itemgetter
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest
from e2e.test_screens import check_screen

ACCOUNT_LAT, ACCOUNT_LNG = 48.85837, 2.29448
PHONE_AT = {"latitude": 48.85845, "longitude": 2.29452, "accuracy": 12}
SUMMARY = "Wants a tasting.\nAsk about Sundays."


async def rep_with_an_account(server: Server, phones: Phones) -> tuple[App, str]:
    """Alice signed in on a phone that may locate itself, with one account synced."""
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        account = await rest.create(
            "accounts", name="Boulangerie Martin", city="Paris", lat=ACCOUNT_LAT, lng=ACCOUNT_LNG
        )
    finally:
        await rest.close()
    app = await phones.signed_in(
        server.url, "alice", permissions=["geolocation"], geolocation=PHONE_AT, controlled=False
    )
    return app, account["id"]


async def half_a_visit(app: App, account_id: str) -> dict[str, str]:
    """Check in and fill part of a visit; what the form shows."""
    await app.account.open(account_id)
    await app.account.log_visit()
    await app.visit_form.check_in()
    await app.visit_form.fill(outcome="follow_up", summary=SUMMARY, followup="Bring samples")
    await app.tid("followup-due-at").fill("2030-05-06T09:30")
    return await app.visit_form.values()


def checked_in(draft: dict[str, Any]) -> dict[str, Any]:
    at = draft["values"]["position"]
    return {"latitude": at["lat"], "longitude": at["lng"], "accuracy": at["accuracy_m"]}


async def test_a_visit_draft_survives_another_screen(server: Server, phones: Phones) -> None:
    app, account_id = await rep_with_an_account(server, phones)
    typed = await half_a_visit(app, account_id)

    # Straight to another screen, no pause: the route change keeps the draft.
    await app.today.open()
    await expect(app.today.drafts_line()).to_have_text("1 unsaved visit draft")
    [draft] = await app.saved_drafts()
    assert draft["key"] == f"visit/new/{account_id}"
    assert checked_in(draft) == PHONE_AT
    assert draft["values"]["started_at"]

    # Back the way a rep would: the account, Log a visit. Everything is as it was.
    await app.account.open(account_id)
    await app.account.log_visit()
    await app.visit_form.expect_restored()
    await expect(app.tid("visit-position")).to_have_attribute("data-state", "located")
    assert await app.visit_form.values() == typed
    notice = app.visit_form.notice()
    await expect(notice).to_have_attribute("data-saved-at", str(draft["saved_at"]))
    saved_at = await app.page.evaluate(
        "(ms) => new Date(ms).toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit'})",
        draft["saved_at"],
    )
    await expect(notice.get_by_test_id("draft-saved-at")).to_have_text(f"Saved at {saved_at}.")

    # And through Today's line and the list of drafts.
    await app.today.open()
    await app.today.open_drafts()
    row = app.drafts.row(draft["key"])
    await expect(row.get_by_test_id("draft-title")).to_have_text("Boulangerie Martin")
    await expect(row).to_contain_text("Visit draft · saved at")
    await expect(row.get_by_test_id("draft-preview")).to_contain_text("Wants a tasting.")
    await app.drafts.resume(draft["key"])
    await app.visit_form.expect_restored()
    assert await app.visit_form.values() == typed
    [same] = await app.saved_drafts()
    assert same == draft  # opening and leaving untouched writes nothing


async def test_a_visit_draft_survives_a_reload_offline(server: Server, phones: Phones) -> None:
    app, account_id = await rep_with_an_account(server, phones)
    await app.wait_controlled()
    await app.set_offline(True)
    typed = await half_a_visit(app, account_id)

    # Reloaded at once, before the typing pause: the page keeps the draft as it goes.
    await app.reload()
    await app.expect_badge("offline")
    await app.visit_form.expect_restored()
    assert await app.visit_form.values() == typed
    [draft] = await app.saved_drafts()
    assert checked_in(draft) == PHONE_AT


async def test_a_visit_draft_survives_the_app_being_killed(server: Server, phones: Phones) -> None:
    app, account_id = await rep_with_an_account(server, phones)
    await app.wait_controlled()
    await app.set_offline(True)
    typed = await half_a_visit(app, account_id)
    await app.visit_form.expect_kept()  # a pause in the typing is enough

    await app.kill_and_reopen()
    await app.visit_form.expect_restored()
    assert await app.visit_form.values() == typed


async def test_saving_the_visit_takes_its_draft_along(server: Server, phones: Phones) -> None:
    app, account_id = await rep_with_an_account(server, phones)
    await half_a_visit(app, account_id)
    await app.visit_form.expect_kept()
    await app.reload()
    await app.visit_form.expect_restored()
    [draft] = await app.saved_drafts()

    visit_id = await app.visit_form.save()
    assert await app.saved_drafts() == []
    [visit] = [v for v in await app.rows("visits") if v["id"] == visit_id]
    assert visit["started_at"] == draft["values"]["started_at"]  # the check-in's time
    assert (visit["lat"], visit["lng"], visit["accuracy_m"]) == (
        PHONE_AT["latitude"],
        PHONE_AT["longitude"],
        PHONE_AT["accuracy"],
    )
    assert visit["summary"] == SUMMARY
    outbox = await app.outbox()
    assert [(m["table"], m["op"]) for m in outbox] == [("visits", "upsert"), ("tasks", "upsert")]
    assert outbox[0]["id"] == visit_id
    assert outbox[1]["fields"]["title"] == "Bring samples"
    await app.today.open()
    await expect(app.today.drafts_line()).to_have_count(0)

    # The form opens empty next time; what was saved reaches the server.
    await app.account.open(account_id)
    await app.account.log_visit()
    await app.visit_form.expect_fresh()
    await expect(app.tid("visit-position")).to_have_attribute("data-state", "none")
    await app.synced()
    rest = await Rest.login(server.url, "alice")
    try:
        [on_server] = await rest.list("visits", account_id=account_id)
    finally:
        await rest.close()
    assert on_server["id"] == visit_id
    assert on_server["verification"] == "verified"


SAVE_WITH_DRAFT = """async ([visit, key]) => {
  const records = await import("/js/records.js");
  try {
    await records.saveWrites([{ table: "visits", id: visit.id, op: "upsert", fields: visit }],
      { drafts: [key] });
    return "saved";
  } catch (err) {
    return err.name;
  }
}"""

REWIND_MID = """async () => {
  const db = await import("/js/db.js");
  await db.write(["meta"], (s) => s.meta.put(1, "next_mid"));
}"""


async def test_a_save_that_fails_keeps_the_draft(server: Server, phones: Phones) -> None:
    """The draft goes in the record's transaction: if that aborts, neither happens."""
    app, account_id = await rep_with_an_account(server, phones)
    await app.set_offline(True)
    await half_a_visit(app, account_id)
    await app.visit_form.expect_kept()
    [draft] = await app.saved_drafts()

    # An outbox entry already holds mid 1, and the counter is wound back onto it: the
    # next write's outbox entry breaks the unique mid index and its transaction aborts.
    await app.save("notes", str(uuid.uuid4()), account_id=account_id, body="Sent later.")
    await app.page.evaluate(REWIND_MID)
    visit = {"id": str(uuid.uuid4()), "account_id": account_id, "started_at": "2030-05-06T09:00Z"}
    assert await app.page.evaluate(SAVE_WITH_DRAFT, [visit, draft["key"]]) == "ConstraintError"
    assert await app.saved_drafts() == [draft]
    assert await app.rows("visits") == []
    assert [m["table"] for m in await app.outbox()] == ["notes"]


async def test_discarding_drafts(server: Server, phones: Phones) -> None:
    app, account_id = await rep_with_an_account(server, phones)
    await half_a_visit(app, account_id)
    await app.account.open(account_id)
    await app.account.add_note()
    await app.note_form.type("Owner prefers mornings.")
    await app.today.open()
    await expect(app.today.drafts_line()).to_have_text("2 unsaved drafts: 1 visit, 1 note")

    # On the form: one tap arms the button, the second discards and empties the form.
    await app.account.open(account_id)
    await app.account.log_visit()
    await app.visit_form.expect_restored()
    await app.visit_form.discard()
    await expect(app.tid("visit-summary")).to_have_value("")
    await expect(app.tid("visit-position")).to_have_attribute("data-state", "none")
    assert [d["kind"] for d in await app.saved_drafts()] == ["note"]

    # In the list.
    await app.drafts.open()
    await expect(app.drafts.rows()).to_have_count(1)
    await app.drafts.discard(f"note/new/{account_id}")
    await expect(app.tid("drafts-empty")).to_be_visible()
    assert await app.saved_drafts() == []
    await app.today.open()
    await expect(app.today.drafts_line()).to_have_count(0)
    assert await app.outbox() == []


async def test_note_and_task_drafts_survive_a_reload(server: Server, phones: Phones) -> None:
    app, account_id = await rep_with_an_account(server, phones)
    rest = await Rest.login(server.url, "alice")
    try:
        task = await rest.create(
            "tasks", account_id=account_id, title="Call back", due_at="2030-05-06T08:00:00+00:00"
        )
        await app.synced()

        await app.account.open(account_id)
        await app.account.add_note()
        await app.note_form.type("Owner prefers mornings.\nGate code 4411.")
        await app.note_form.expect_kept()

        await app.go("#/task/new")
        await app.task_form.fill(title="Order flyers", due_at="2030-05-07T10:15")
        await app.task_form.expect_kept()

        # An edit keeps only what the rep changed...
        await app.go(f"#/task/{task['id']}/edit")
        await app.task_form.fill(title="Call back about the tasting")
        await app.task_form.expect_kept()
        await app.reload()
        await app.task_form.expect_restored()
        assert (await app.task_form.values("title"))["title"] == "Call back about the tasting"
        drafts = {d["key"]: d for d in await app.saved_drafts()}
        assert set(drafts) == {
            f"note/new/{account_id}",
            "task/new/-",
            f"task/{task['id']}",
        }
        assert drafts[f"task/{task['id']}"]["values"] == {
            "fields": {"title": "Call back about the tasting"}
        }

        await app.account.open(account_id)
        await app.account.add_note()
        await app.note_form.expect_restored()
        await expect(app.note_form.body()).to_have_value("Owner prefers mornings.\nGate code 4411.")

        await app.go("#/task/new")
        await app.task_form.expect_restored()
        assert await app.task_form.values("title", "due_at") == {
            "title": "Order flyers",
            "due_at": "2030-05-07T10:15",
        }

        # ... so a colleague's later change to another field survives the restored edit.
        await rest.update("tasks", task["id"], due_at="2030-05-08T08:00:00+00:00")
        await app.synced()
        await app.go(f"#/task/{task['id']}/edit")
        await app.task_form.expect_restored()
        [row] = [t for t in await app.rows("tasks") if t["id"] == task["id"]]
        assert row["due_at"].startswith("2030-05-08")
        shown_due = await app.page.evaluate(
            """(iso) => {
              const d = new Date(iso);
              const pad = (n) => String(n).padStart(2, "0");
              return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
                `T${pad(d.getHours())}:${pad(d.getMinutes())}`;
            }""",
            row["due_at"],
        )
        assert await app.task_form.values("title", "due_at") == {
            "title": "Call back about the tasting",
            "due_at": shown_due,
        }
        await app.task_form.save()
        [sent] = await app.outbox()
        assert sent["id"] == task["id"]
        assert sent["fields"] == {"title": "Call back about the tasting"}
        assert {d["key"] for d in await app.saved_drafts()} == {
            f"note/new/{account_id}",
            "task/new/-",
        }
    finally:
        await rest.close()


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
            assert schema["version"] >= 2  # and on to the newest (e2e/test_rejected.py)
            assert "drafts" in schema["stores"]
            by_id = itemgetter("id")
            assert sorted(await app.rows("accounts"), key=by_id) == sorted(accounts, key=by_id)
            assert await app.rows("visits") == [visit]
            assert await app.outbox() == [entry]
            for key, value in meta.items():
                assert await app.meta(key) == value, key
            await expect(app.page.locator("body")).to_have_attribute("data-signed-in", "yes")
            await app.expect_pending(1)

            # The new store works on the upgraded database.
            await app.account.open(accounts[1]["id"])
            await app.account.add_note()
            await app.note_form.type("After the update.")
            await app.today.open()
            await expect(app.today.drafts_line()).to_have_text("1 unsaved note draft")

        # The visit written before the update still goes to the server, once.
        await app.synced()
        [on_server] = await rest.list("visits", account_id=accounts[0]["id"])
        assert (on_server["id"], on_server["summary"]) == (visit_id, "Logged before the update.")
    finally:
        await rest.close()


async def test_drafts_fit_a_phone(server: Server, phones: Phones, artifacts: Path) -> None:
    """The restored notice and the list at 360x740, light and dark, and with large text:
    no sideways scrolling, readable contrast. Screenshots in test-artifacts/."""
    app, account_id = await rep_with_an_account(server, phones)
    await half_a_visit(app, account_id)
    await app.account.open(account_id)
    await app.account.add_note()
    await app.note_form.type("Owner prefers mornings. Deliveries before 7 am, gate B.")
    await app.go("#/task/new")
    await app.task_form.fill(title="Send the price list for the Christmas range")
    await app.today.open()
    await check_screen(app, artifacts, "drafts-today", "today-drafts")

    await app.today.open_drafts()
    await expect(app.drafts.rows()).to_have_count(3)
    await check_screen(app, artifacts, "drafts-list", "drafts-count", "draft-row-discard")

    await app.account.open(account_id)
    await app.account.log_visit()
    await app.visit_form.expect_restored()
    await check_screen(app, artifacts, "drafts-notice", "draft-notice", "draft-discard")

    # A rep with the phone's text size turned up (the app sizes everything in rem).
    for percent in (150, 200):
        await app.page.evaluate(
            "(p) => { document.documentElement.style.fontSize = `${p}%`; }", percent
        )
        await app.drafts.open()
        await check_screen(app, artifacts, f"drafts-list-text{percent}", "draft-row-discard")
        await app.page.screenshot(
            path=artifacts / f"screen-drafts-list-text{percent}-full.png", full_page=True
        )
        await app.account.open(account_id)
        await app.account.log_visit()
        await check_screen(app, artifacts, f"drafts-notice-text{percent}", "draft-discard")
        width = await app.scroll_width()
        assert width <= PHONE["width"], f"{percent}% text: the page is {width} px wide"
