"""Privacy (SPEC section 12) on SQLite and PostgreSQL, over HTTP: a record's export holds
everything that hangs off it; an erasure leaves no byte of the erased values in the
database's files (read as files, the write-ahead log included) nor anywhere the server
keeps them, only the fact of the erasure; bad callers and bad input get a clear 4xx."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server import db
from server.core.history import verify
from server.settings import Settings
from tests.conftest import Database
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import (
    Login,
    login_as,
    make_account,
    make_attachment,
    photo,
    put_blob,
    sha256_of,
)
from tests.support.files import files_holding, marker


async def export(client: Any, who: Login, table: str, record_id: str) -> Any:
    return await client.get(
        f"/api/privacy/export?table={table}&id={record_id}", headers=who.headers
    )


async def erase(client: Any, who: Login, table: str, record_id: str) -> Any:
    return await client.post(
        "/api/privacy/erase", json={"table": table, "id": record_id}, headers=who.headers
    )


# -- a record with a bit of everything -------------------------------------------------


async def sync(client: Any, who: Login, mutations: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"protocol": 1, "client_id": new_id(), "cursor": None, "mutations": mutations}
    response = await client.post("/api/sync/v1", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def write(table: str, record_id: str, fields: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "mid": 1,
        "table": table,
        "id": record_id,
        "op": kw.get("op", "upsert"),
        "fields": fields,
        "base_seq": None,
        "hlc": list(kw.get("hlc", (now_ms(), 0))),
    }


async def full_account(client: Any, rep: Login, mark: str) -> dict[str, str]:
    """An account whose values (each holding `mark`) are spread over every place the
    server keeps them: its row, what hangs off it, the search indexes, history (an old
    name), a conflict, refused writes and their stored results, the import log, a
    reminder not yet sent, the geocoder's bookkeeping."""
    ids = {"accounts": new_id()}
    phone = Device(client, rep)
    await phone.sync(
        phone.write(
            "accounts",
            ids["accounts"],
            {
                "name": f"Oldname{mark}",
                "email": f"owner.{mark}@example.com",
                "street": f"12 rue {mark}",
                "city": f"Ville{mark}",
                "lat": 45.76,
                "lng": 4.83,
            },
        )
    )
    await phone.pull_all()
    await phone.sync(phone.write("accounts", ids["accounts"], {"name": f"Boulangerie {mark}"}))
    for table, fields in {
        "contacts": {"name": f"Zoe {mark}", "email": f"zoe.{mark}@example.com"},
        "visits": {"started_at": datetime.now(UTC).isoformat(), "summary": f"Met {mark}"},
        # Long enough to leave the row's page (SQLite's overflow pages, PostgreSQL's TOAST).
        "notes": {"body": f"Note {mark} " + "lorem ipsum " * 1200 + mark},
        "tasks": {"title": f"Call {mark}", "remind_at": datetime.now(UTC).isoformat()},
        "deals": {"title": f"Order {mark}", "amount": 12.0, "currency": "EUR"},
    }.items():
        ids[table] = new_id()
        await phone.sync(phone.write(table, ids[table], {"account_id": ids["accounts"], **fields}))
    # A write that loses to the name: its value is kept in a conflicts row.
    other = Device(client, rep)
    old = (now_ms() - 3_600_000, 0)
    data = await other.sync(
        other.write("accounts", ids["accounts"], {"name": f"Lostname{mark}"}, hlc=old)
    )
    assert data["ack"]["results"][0]["status"] == "merged", data
    # A refused write, kept whole (rule 12), about the account.
    data = await other.sync(
        other.write(
            "notes", new_id(), {"account_id": ids["accounts"], "body": f"Refused {mark}", "x": 1}
        )
    )
    assert data["ack"]["results"][0]["status"] == "rejected", data
    # An import that made a contact on it, and refused a row quoting a value.
    title = f"Buyer {mark} " + "x" * 200
    account = ids["accounts"]
    csv = f"name,account,title\nImported {mark},{account},Buyer\nZoe {mark},{account},{title}\n"
    response = await client.post(
        "/api/import/contacts",
        content=csv,
        headers={
            **(await login_as(client, "manager", "north")).headers,
            "Content-Type": "text/csv",
        },
    )
    assert response.status_code == 200 and response.json()["created"] == 1, response.text
    # A reminder not yet sent and the geocoder's bookkeeping, as their jobs write them.
    async with db.transaction():
        await db.fetch(
            "INSERT INTO push_deliveries (id, task_id, subscription_id, payload, attempts,"
            " next_attempt_at) VALUES ({}, {}, {}, {}, {}, {})",
            new_id(),
            ids["tasks"],
            new_id(),
            json.dumps({"title": f"Call {mark}", "account_name": f"Boulangerie {mark}"}),
            0,
            datetime.now(UTC),
        )
        await db.fetch(
            "INSERT INTO geocoding_attempts (account_id, street, outcome, failures,"
            " attempted_at) VALUES ({}, {}, {}, {}, {})",
            ids["accounts"],
            f"12 rue {mark}",
            "not_found",
            1,
            now_ms(),
        )
    return ids


async def test_an_erasure_leaves_no_byte_of_the_values_in_the_database_files(
    client: Any, database: Database
) -> None:
    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    mark = marker()
    ids = await full_account(client, rep, mark)
    # A refused write whose kept sentence names the account: a note on it once deleted.
    response = await client.delete(f"/api/accounts/{ids['accounts']}", headers=rep.headers)
    assert response.status_code in (200, 204), response.text
    late = Device(client, rep)
    data = await late.sync(
        late.write("notes", new_id(), {"account_id": ids["accounts"], "body": "Late"})
    )
    assert data["ack"]["results"][0]["status"] == "rejected", data
    rows = await db.fetch("SELECT detail FROM rejections WHERE account_id = {}", ids["accounts"])
    assert any(mark in row["detail"] for row in rows), rows  # it names the account
    # Another account, kept, with values of its own.
    kept_mark = marker()
    kept = await full_account(client, rep, kept_mark)

    assert await files_holding(database, mark), "the values are not in the files to begin with"

    response = await erase(client, admin, "accounts", ids["accounts"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["reclaimed"] is True and answer["records"] >= 9, answer
    assert answer["erased_by"] == admin.user_id

    assert await files_holding(database, mark) == []
    assert await files_holding(database, kept_mark)  # what was not erased is all there
    # Nothing the server keeps names the record but the erasure.
    for table in ("accounts", "contacts", "visits", "notes", "tasks", "deals", "conflicts",
                  "rejections", "import_items", "push_deliveries", "geocoding_attempts",
                  "scope_moves"):  # fmt: skip
        column = {
            "accounts": "id",
            "push_deliveries": "task_id",
            "geocoding_attempts": "account_id",
            "import_items": "record_id",
            "scope_moves": "record_id",
            "conflicts": "record_id",
        }.get(table, "account_id")
        rows = await db.fetch(f"SELECT * FROM {table} WHERE {column} = {{}}", ids["accounts"])
        assert rows == [], table
    entries = await db.fetch(
        "SELECT op, fields, user_id FROM history WHERE record_id = {}", ids["accounts"]
    )
    assert [(e["op"], e["fields"]) for e in entries] == [("erase", "{}")]
    assert str(entries[0]["user_id"]) == admin.user_id
    erasure = await db.fetch("SELECT * FROM erasures WHERE record_id = {}", ids["accounts"])
    assert [(r["record_table"], str(r["erased_by"])) for r in erasure] == [
        ("accounts", admin.user_id)
    ]
    assert erasure[0]["reclaimed_at"] is not None
    # The kept account is whole, and every chain still verifies.
    response = await export(client, admin, "accounts", kept["accounts"])
    assert response.status_code == 200 and kept_mark in response.text
    assert await verify() == []
    # The search finds nothing of it any more, and what it found of the other still.
    for q, expected in ((mark, 0), (kept_mark, 1)):
        response = await client.get(f"/api/accounts?q=Boulangerie {q}", headers=admin.headers)
        assert len(response.json()["items"]) == expected, (q, response.text)


async def test_statistics_gathered_while_the_values_were_there_keep_none(
    client: Any, database: Database
) -> None:
    """PostgreSQL's statistics (autovacuum's, a bulk write's: db.analyze) may hold an erased
    value among a column's most common ones, and ANALYZE of a table the erasure left empty
    keeps them: the erasure drops them first. (SQLite keeps no statistics of values.)"""
    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    mark = marker()
    ids = await full_account(client, rep, mark)
    await db.analyze(
        ("accounts", "contacts", "visits", "notes", "tasks", "deals", "history", "conflicts",
         "rejections", "import_items", "push_deliveries", "geocoding_attempts")
    )  # fmt: skip
    response = await erase(client, admin, "accounts", ids["accounts"])
    assert response.status_code == 200 and response.json()["reclaimed"] is True, response.text
    assert await db.fetch("SELECT id FROM contacts") == []  # a table it left empty
    assert await files_holding(database, mark) == []


async def test_an_export_holds_the_record_what_hangs_off_it_and_its_history(
    client: Any,
) -> None:
    rep = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    mark = marker()
    ids = await full_account(client, rep, mark)
    response = await export(client, manager, "accounts", ids["accounts"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == "fieldcrm-export/1"
    assert document["table"] == "accounts" and document["id"] == ids["accounts"]
    assert document["record"]["name"] == f"Boulangerie {mark}"
    hangs_off = document["hangs_off"]
    for table in ("contacts", "visits", "notes", "tasks", "deals"):
        assert ids[table] in {row["id"] for row in hangs_off[table]}, table
    assert {row["name"] for row in hangs_off["contacts"]} == {f"Zoe {mark}", f"Imported {mark}"}
    history = document["history"]
    account_ops = [e["op"] for e in history if e["record_id"] == ids["accounts"]]
    assert account_ops[:2] == ["create", "update"]
    renamed = next(e for e in history if e["record_id"] == ids["accounts"] and e["op"] == "update")
    assert renamed["fields"]["name"] == {"old": f"Oldname{mark}", "new": f"Boulangerie {mark}"}
    assert {ids[t] for t in ("contacts", "visits", "notes", "tasks", "deals")} <= {
        e["record_id"] for e in history
    }
    assert [c["lost_value"] for c in document["conflicts"]] == [f"Lostname{mark}"]
    assert [r["fields"]["body"] for r in document["rejections"]] == [f"Refused {mark}"]
    assert document["attachments"] == []
    assert document["people"][rep.user_id] == rep.username
    assert document["links"]["record"] == f"/api/accounts/{ids['accounts']}"
    assert document["truncated"] == []
    # A contact's export: the contact, its history, its account by name.
    response = await export(client, manager, "contacts", ids["contacts"])
    assert response.status_code == 200, response.text
    contact = response.json()
    assert contact["record"]["email"] == f"zoe.{mark}@example.com"
    assert contact["hangs_off"] == {
        "account": [{"id": ids["accounts"], "name": f"Boulangerie {mark}"}]
    }
    assert [e["op"] for e in contact["history"]] == ["create"]


async def test_who_may_export_and_erase_and_bad_input(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    stranger = await login_as(client, "manager", "south")
    admin = await login_as(client, "admin", "hq")
    account = (
        await client.post("/api/accounts", json={"name": "Kept"}, headers=rep.headers)
    ).json()["id"]

    def error(response: Any, status: int, code: str | None = None) -> None:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"] and body["detail"], body
        if code is not None:
            assert body["error"] == code, body

    error(await export(client, rep, "accounts", account), 403)
    error(await export(client, stranger, "accounts", account), 404, "not_found")
    error(await export(client, manager, "accounts", new_id()), 404, "not_found")
    error(await export(client, manager, "visits", account), 400)
    error(await export(client, manager, "accounts", "not-a-uuid"), 400)
    error(await client.get("/api/privacy/export?table=accounts", headers=manager.headers), 400)
    for who in (rep, manager):
        error(await erase(client, who, "accounts", account), 403)
    for body in ({"table": "visits", "id": account}, {"table": "accounts", "id": "x"}, {}, []):
        response = await client.post("/api/privacy/erase", json=body, headers=admin.headers)
        assert response.status_code in (400, 422), response.text
        error(response, response.status_code)
    response = await client.post("/api/privacy/erase", content=b"{not json", headers=admin.headers)
    error(response, 400)
    error(await erase(client, admin, "accounts", new_id()), 404, "not_found")
    assert (await client.get(f"/api/accounts/{account}", headers=rep.headers)).status_code == 200

    assert (await erase(client, admin, "accounts", account)).status_code == 200
    error(await erase(client, admin, "accounts", account), 409, "already_erased")
    error(await export(client, manager, "accounts", account), 404, "erased")
    error(await export(client, admin, "accounts", account), 404, "erased")
    error(await client.get(f"/api/accounts/{account}", headers=rep.headers), 404)
    # A REST write to the erased id is refused, and makes nothing.
    response = await client.post(
        "/api/accounts", json={"id": account, "name": "Back"}, headers=rep.headers
    )
    error(response, 404, "erased")
    response = await client.post(
        "/api/notes", json={"account_id": account, "body": "On it"}, headers=rep.headers
    )
    error(response, 404, "erased")
    assert await db.fetch("SELECT id FROM accounts WHERE id = {}", account) == []
    # The admin reads that it was erased, and nothing else of it; others nothing at all.
    history = await client.get(f"/api/history/accounts/{account}", headers=admin.headers)
    assert [e["op"] for e in history.json()["entries"]] == ["erase"]
    error(await client.get(f"/api/history/accounts/{account}", headers=manager.headers), 404)


async def test_erasing_a_contact_leaves_its_account(client: Any, database: Database) -> None:
    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    mark = marker()
    ids = await full_account(client, rep, mark)
    contact_mark = marker()
    phone = Device(client, rep)
    contact = new_id()
    await phone.sync(
        phone.write(
            "contacts",
            contact,
            {"account_id": ids["accounts"], "name": f"Jo {contact_mark}", "phone": "0478"},
        )
    )
    await phone.pull_all()
    await phone.sync(phone.write("contacts", contact, {"email": f"jo.{contact_mark}@example.com"}))
    response = await erase(client, admin, "contacts", contact)
    assert response.status_code == 200, response.text
    assert response.json()["records"] == 1
    assert await files_holding(database, contact_mark) == []
    assert await files_holding(database, mark)
    response = await export(client, admin, "accounts", ids["accounts"])
    assert response.status_code == 200
    assert contact not in response.text and ids["contacts"] in response.text
    assert await verify() == []


async def test_an_erasure_stopped_before_its_reclaim_is_finished_by_the_job(
    client: Any, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The erasure commits first; if the process stops before the engine has given back
    the space, the retention job (run at every start) finishes it."""
    from server.core import erasure
    from server.privacy.retention import run_retention
    from server.settings import Settings

    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    mark = marker()
    ids = await full_account(client, rep, mark)

    async def crash(erasure_id: str) -> bool:
        raise RuntimeError("the process stopped")

    monkeypatch.setattr(erasure, "reclaim", crash)
    response = await erase(client, admin, "accounts", ids["accounts"])
    assert response.status_code == 200 and response.json()["reclaimed"] is False
    rows = await db.fetch("SELECT reclaimed_at FROM erasures WHERE record_id = {}", ids["accounts"])
    assert rows[0]["reclaimed_at"] is None
    assert await db.fetch("SELECT id FROM notes WHERE id = {}", ids["notes"]) == []
    monkeypatch.undo()
    job = asyncio.create_task(run_retention(Settings(database=database.config)))
    try:
        for _ in range(200):
            rows = await db.fetch(
                "SELECT reclaimed_at FROM erasures WHERE record_id = {}", ids["accounts"]
            )
            if rows[0]["reclaimed_at"] is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        job.cancel()
    assert rows[0]["reclaimed_at"] is not None
    assert await files_holding(database, mark) == []


async def test_retention_removes_old_history_and_conflicts_and_the_chain_verifies(
    client: Any,
) -> None:
    from server.privacy.retention import Expired, expire

    rep = await login_as(client, "rep", "north")
    phone = Device(client, rep)
    account = new_id()
    await phone.sync(phone.write("accounts", account, {"name": "First"}))
    await phone.pull_all()
    await phone.sync(phone.write("accounts", account, {"name": "Second"}))
    other = Device(client, rep)
    await other.sync(other.write("accounts", account, {"name": "Lost"}, hlc=(now_ms() - 60_000, 0)))
    await phone.pull_all()
    assert phone.conflicts()
    await asyncio.sleep(0.01)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.01)
    for name in ("Third", "Fourth"):
        await phone.sync(phone.write("accounts", account, {"name": name}))
    # A day on, with a retention of one day: what was stored before `cutoff` goes.
    expired = await expire(1, now=cutoff + timedelta(days=1))
    assert expired == Expired(entries=2, conflicts=1), expired
    entries = await db.fetch(
        "SELECT op, fields FROM history WHERE record_id = {} ORDER BY seq", account
    )
    assert [json.loads(e["fields"])["name"]["new"] for e in entries] == ["Third", "Fourth"]
    assert await verify() == []
    assert await db.fetch("SELECT id FROM conflicts WHERE record_id = {}", account) == []
    await phone.pull_all()
    assert phone.conflicts() == []
    # An entry removed by hand after the cut is still seen.
    await db.fetch(
        "DELETE FROM history WHERE seq = (SELECT MIN(seq) FROM history WHERE record_id = {})",
        account,
    )
    assert [p.what for p in await verify()] == ["earlier entry removed"]


async def test_erasing_an_account_takes_its_photos_bytes_and_its_export_lists_them(
    client: Any, settings: Settings
) -> None:
    rep = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    admin = await login_as(client, "admin", "hq")
    account = await make_account(client, rep, name="Boulangerie Erased")
    other = await make_account(client, rep, name="Boulangerie Kept")
    own, shared = photo(21), photo(22)
    made = await make_attachment(client, rep, own, account_id=account["id"])
    await make_attachment(client, rep, shared, account_id=account["id"])
    await make_attachment(client, rep, shared, account_id=other["id"])  # the same photo
    for data in (own, shared):
        assert (await put_blob(client, rep, data)).status_code == 201

    response = await export(client, manager, "accounts", account["id"])
    assert response.status_code == 200, response.text
    listed = {a["id"]: a for a in response.json()["attachments"]}
    assert len(listed) == 2
    assert listed[made["id"]]["link"] == f"/api/attachments/blobs/{sha256_of(own)}"
    assert listed[made["id"]]["media_type"] == "image/jpeg"

    assert (await erase(client, admin, "accounts", account["id"])).status_code == 200
    gone = await client.get(f"/api/attachments/blobs/{sha256_of(own)}", headers=admin.headers)
    assert gone.status_code == 404
    held = await db.fetch("SELECT sha256 FROM attachment_blobs")
    assert [r["sha256"] for r in held] == [sha256_of(shared)]  # the other account still has it
    root = Path(settings.blob_url.removeprefix("file://"))
    names = [f for _, _, files in os.walk(root) for f in files]
    assert len(names) == 1 and sha256_of(own) not in "".join(names)
    still = await client.get(f"/api/attachments/blobs/{sha256_of(shared)}", headers=rep.headers)
    assert still.status_code == 200


async def test_an_erasure_stopped_before_its_photos_bytes_went_has_the_job_delete_them(
    client: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashes to delete are written with the erasure, in its transaction: a process
    that stops after the commit and before the bytes are deleted leaves them to
    `reclaim_pending` (the retention job, at every start), which deletes them; bytes a
    live attachment of another account holds stay."""
    from server.core import erasure

    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    account = await make_account(client, rep, name="Boulangerie Stopped")
    other = await make_account(client, rep, name="Boulangerie Kept")
    own, shared = photo(31), photo(32)
    await make_attachment(client, rep, own, account_id=account["id"])
    await make_attachment(client, rep, shared, account_id=account["id"])
    await make_attachment(client, rep, shared, account_id=other["id"])  # the same photo
    for data in (own, shared):
        assert (await put_blob(client, rep, data)).status_code == 201
    root = Path(settings.blob_url.removeprefix("file://"))

    def stored() -> set[str]:
        return {f for _, _, files in os.walk(root) for f in files}

    assert stored() == {sha256_of(own), sha256_of(shared)}

    async def stop(erasure_id: str) -> bool:  # the process stops right after the commit
        raise RuntimeError("the process stopped")

    monkeypatch.setattr(erasure, "reclaim", stop)
    response = await erase(client, admin, "accounts", account["id"])
    assert response.status_code == 200 and response.json()["reclaimed"] is False
    monkeypatch.undo()
    assert stored() == {sha256_of(own), sha256_of(shared)}  # nothing deleted yet
    rows = await db.fetch("SELECT blobs FROM erasures WHERE record_id = {}", account["id"])
    assert json.loads(rows[0]["blobs"]) == sorted([sha256_of(own), sha256_of(shared)])

    assert await erasure.reclaim_pending() == 1
    assert stored() == {sha256_of(shared)}
    held = await db.fetch("SELECT sha256 FROM attachment_blobs")
    assert [r["sha256"] for r in held] == [sha256_of(shared)]
    rows = await db.fetch(
        "SELECT blobs, reclaimed_at FROM erasures WHERE record_id = {}", account["id"]
    )
    assert rows[0]["blobs"] == "[]" and rows[0]["reclaimed_at"] is not None
    assert await erasure.reclaim_pending() == 0  # nothing left to do
    gone = await client.get(f"/api/attachments/blobs/{sha256_of(own)}", headers=admin.headers)
    assert gone.status_code == 404
    still = await client.get(f"/api/attachments/blobs/{sha256_of(shared)}", headers=rep.headers)
    assert still.status_code == 200


async def test_a_rewrite_waiting_for_its_tables_lock_holds_no_one_up(database: Database) -> None:
    """On PostgreSQL the reclaim rewrites a table only once it has its lock, and asks for
    it with a short lock_timeout: while a long transaction uses the table, the rewrite
    asks again and again, and the reads and writes that come meanwhile are not queued
    behind it until that transaction ends (a plain wait would hold them up that long)."""
    if database.engine != "postgres":
        pytest.skip("SQLite's reclaim is a checkpoint: no table is locked")
    import asyncpg

    from server.db import postgres
    from tests.conftest import PG_HOST, PG_PORT, PG_USER

    def connect() -> Any:
        return asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=database.config.database
        )

    holder, rewriter, other = await connect(), await connect(), await connect()
    loop = asyncio.get_running_loop()
    try:
        before = await other.fetchval("SELECT pg_relation_filenode('notes')")
        await holder.execute("BEGIN")
        await holder.fetch("SELECT id FROM notes LIMIT 1")  # holds the table until COMMIT
        with pytest.raises(RuntimeError, match="stayed in use"):
            await asyncio.wait_for(postgres._rewrite(rewriter, "notes", loop.time() + 0.5), 10)
        rewrite = asyncio.create_task(postgres._rewrite(rewriter, "notes", loop.time() + 60))
        await asyncio.sleep(0.5)  # the rewrite is asking for the lock meanwhile
        for _ in range(3):
            begun = loop.time()
            await asyncio.wait_for(other.fetchval("SELECT count(*) FROM notes"), 3)
            await asyncio.wait_for(other.execute("UPDATE notes SET id = id WHERE false"), 3)
            assert loop.time() - begun < 2
        assert not rewrite.done()
        await holder.execute("COMMIT")
        await asyncio.wait_for(rewrite, 30)
        assert await other.fetchval("SELECT pg_relation_filenode('notes')") != before
    finally:
        for conn in (holder, rewriter, other):
            conn.terminate()


async def test_the_retention_job_removes_what_is_older_than_the_setting(
    client: Any, database: Database
) -> None:
    """With FIELDCRM_HISTORY_RETENTION_DAYS set, the background job (not only `expire`)
    removes the history entries stored before then; unset, it removes nothing."""
    from server.privacy.retention import run_retention

    rep = await login_as(client, "rep", "north")
    phone = Device(client, rep)
    account = new_id()
    for name in ("Old", "New"):
        await phone.sync(phone.write("accounts", account, {"name": name}))
    entries = await db.fetch("SELECT seq FROM history WHERE record_id = {} ORDER BY seq", account)
    assert len(entries) == 2
    # The first was written three days ago (its `at` is not in its hash's successor).
    await db.fetch(
        "UPDATE history SET at = {} WHERE seq = {}",
        datetime.now(UTC) - timedelta(days=3),
        entries[0]["seq"],
    )

    async def seqs_after_a_run(days: int) -> list[int]:
        job = asyncio.create_task(
            run_retention(Settings(database=database.config, history_retention_days=days))
        )
        try:
            for _ in range(100 if days else 6):  # a run with nothing to do: a moment
                await asyncio.sleep(0.05)
                rows = await db.fetch(
                    "SELECT seq FROM history WHERE record_id = {} ORDER BY seq", account
                )
                if len(rows) == 1:
                    break
        finally:
            job.cancel()
        return [int(r["seq"]) for r in rows]

    assert len(await seqs_after_a_run(0)) == 2  # kept forever
    assert await seqs_after_a_run(2) == [entries[1]["seq"]]
    assert [p.what for p in await verify() if p.record_id == account] == []


async def test_an_erasure_that_fails_midway_leaves_everything_as_it_was(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure is one transaction: one that fails after it has deleted rows and history
    and scrubbed the server's other tables leaves every one of them as it was, and can be
    asked again."""
    from server.core import erasure
    from server.core.actor import Actor

    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    ids = await full_account(client, rep, marker())
    account = ids["accounts"]

    async def counts() -> dict[str, int]:
        found = {}
        for table, where in {
            "accounts": "id",
            "notes": "account_id",
            "conflicts": "record_id",
            "history": "record_id",
            "push_deliveries": "task_id",
            "geocoding_attempts": "account_id",
            "erased_records": "record_id",
        }.items():
            key = ids["tasks"] if table == "push_deliveries" else account
            rows = await db.fetch(f"SELECT COUNT(*) AS n FROM {table} WHERE {where} = {{}}", key)
            found[table] = int(rows[0]["n"])
        found["erasures"] = len(await db.fetch("SELECT id FROM erasures"))
        found["imports"] = len(
            [r for r in await db.fetch("SELECT report FROM imports") if account in r["report"]]
        )
        return found

    before = await counts()
    assert all(before[t] for t in ("accounts", "notes", "conflicts", "history", "imports"))

    async def fails(*_: Any) -> bool:  # the last step of the transaction
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(erasure, "_scrub_import_log", fails)
    who = Actor(admin.user_id, admin.username, admin.role, admin.team_id)
    with pytest.raises(RuntimeError, match="disk is full"):
        await erasure.erase(who, "accounts", account)
    assert await counts() == before
    monkeypatch.undo()
    response = await erase(client, admin, "accounts", account)
    assert response.status_code == 200, response.text
    after = await counts()
    assert after["accounts"] == after["notes"] == after["imports"] == 0, after


async def test_an_erasure_whose_bytes_cannot_be_deleted_yet_holds_up_no_other(
    client: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob store refuses to delete one erasure's bytes (down, say): the job finishes
    the other erasures, and that one on a later run."""
    from server import blobs
    from server.core import erasure

    rep = await login_as(client, "rep", "north")
    admin = await login_as(client, "admin", "hq")
    root = Path(settings.blob_url.removeprefix("file://"))
    accounts, photos = [], [photo(41), photo(42)]
    for data in photos:
        account = await make_account(client, rep, name="Boulangerie Stuck")
        await make_attachment(client, rep, data, account_id=account["id"])
        assert (await put_blob(client, rep, data)).status_code == 201
        accounts.append(account["id"])

    async def stop(erasure_id: str) -> bool:
        raise RuntimeError("the process stopped")

    monkeypatch.setattr(erasure, "reclaim", stop)
    for account_id in accounts:
        assert (await erase(client, admin, "accounts", account_id)).status_code == 200
    monkeypatch.undo()
    stuck = sha256_of(photos[0])
    delete = blobs.delete

    async def store_down_for_one(sha256: str) -> None:
        if sha256 == stuck:
            raise OSError("the store is down")
        await delete(sha256)

    monkeypatch.setattr(blobs, "delete", store_down_for_one)
    assert await erasure.reclaim_pending() == 1
    assert {f for _, _, files in os.walk(root) for f in files} == {stuck}
    monkeypatch.undo()
    assert await erasure.reclaim_pending() == 1
    assert [f for _, _, files in os.walk(root) for f in files] == []
    assert await db.fetch("SELECT id FROM erasures WHERE reclaimed_at IS NULL") == []
