"""Imports in the background (SPEC section 8, docs/import-export.md) over HTTP on both
engines: the request answers at once, the rows are checked and written by a job whose
progress GET /api/import/{id} shows, a dry run in the background answers what a real run
does, a bad file is still refused on the request, phones syncing meanwhile are served
between the import's short batches, and an import whose server stopped is failed and can
be reverted."""

from __future__ import annotations

import asyncio
import gc
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl

from server import db
from server.transfer import importing, planning
from tests.factories import Login, login_as, make_account, new_id
from tests.integration.test_import import accounts, csv_body, import_status, post_import, seq

# The loop is held one batch, or one slice of reading or checking rows, at a time: about
# 20 ms of work. All 2,000 rows in one transaction, a workbook read in one go, or a full
# collection over the import's objects hold it for far longer.
BATCH_HELD_S = 0.2


class LoopBusy:
    """The most CPU time the event loop's thread spent between two turns of a task that
    wakes every 2 ms: how long the loop was held by work (not by the machine's other
    processes taking the CPU, which a clock on the wall would count too)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            start = time.thread_time()
            await asyncio.sleep(0.002)
            self.worst = max(self.worst, time.thread_time() - start)

    async def __aenter__(self) -> LoopBusy:
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


REPORTED = ("rows", "created", "updated", "duplicates", "geocode", "errors", "error_count",
            "unknown_columns", "ignored_columns", "encoding", "preview")  # fmt: skip


def shops(count: int) -> list[list[Any]]:
    """A header and `count` rows: most placed, some with an address only, a few errors."""
    rows: list[list[Any]] = [["Société", "Ville", "Latitude", "Longitude", "Tél", "Note"]]
    for n in range(count):
        placed = n % 4 != 0
        # Shops 200 m apart or more: alike names ("Boutique 4", "Boutique 5") are not
        # the same shop.
        lat = f"{45.70 + n * 0.002:.6f}" if placed else ""
        lng = f"{4.80 + (n % 50) * 0.002:.6f}" if placed else ""
        rows.append(
            [f"Boutique {n}", "Lyon", lat, lng, f"04 78 {n // 100:02d} {n % 100:02d} 00", ""]
        )
    rows[7][2] = "95"  # out of range
    rows[9][0] = ""  # no name
    rows.append(rows[3][:])  # the same shop twice: a duplicate within the file
    return rows


async def start(client: Any, who: Login, body: bytes | str, **query: str) -> dict[str, Any]:
    response = await post_import(client, who, body, background="true", **query)
    assert response.status_code == 202, response.text
    started: dict[str, Any] = response.json()
    assert started["state"] == "running" and started["import_id"], started
    return started


async def finished(
    client: Any, who: Login, import_id: str, timeout_s: float = 120
) -> dict[str, Any]:
    """The import's status once it has ended, polled as a client would; the progress seen
    on the way is checked to only go forward."""
    deadline = time.monotonic() + timeout_s
    written = 0
    while True:
        status = await import_status(client, who, import_id)
        assert status["written"] >= written, status
        written = status["written"]
        if status["state"] != "running":
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


async def test_the_request_answers_at_once_and_the_job_reports_what_a_run_on_the_request_does(
    client: Any,
) -> None:
    manager = await login_as(client, "manager", "north")
    await make_account(client, manager, name="Boutique 5", lat=45.71, lng=4.81)  # in the file
    body = csv_body(shops(300), ";").encode("cp1252")
    on_request = (await post_import(client, manager, body, dry_run="true")).json()
    before = await seq()

    started = await start(client, manager, body, dry_run="true")
    assert started["dry_run"] is True and started["rows"] == 301
    dry = await finished(client, manager, started["import_id"])
    assert await seq() == before and "Boutique 1" not in await accounts()
    assert dry["state"] == "done" and dry["dry_run"] is True and dry["written"] == 301
    assert {k: dry[k] for k in REPORTED} == {k: on_request[k] for k in REPORTED}
    response = await client.delete(f"/api/import/{started['import_id']}", headers=manager.headers)
    assert response.status_code == 409 and response.json()["error"] == "dry_run"

    started = await start(client, manager, body)
    real = await finished(client, manager, started["import_id"])
    assert real["state"] == "done" and real["dry_run"] is False and real["failure"] is None
    assert {k: real[k] for k in REPORTED} == {k: on_request[k] for k in REPORTED}
    assert (real["created"], real["duplicates"], real["error_count"]) == (297, 2, 2), real
    assert {(e["row"], e["column"]) for e in real["errors"]} == {(8, "Latitude"), (10, "Société")}
    assert real["geocode"] == 74 and real["geocoding"]["pending"] == 74
    assert real["written"] == real["rows"] == 301
    assert len(await accounts()) == 298
    assert real["preview"][0]["name"] == "Boutique 0"


async def test_rows_checked_in_a_child_process_answer_what_checking_them_here_does(
    client: Any, monkeypatch: Any
) -> None:
    manager = await login_as(client, "manager", "north")
    await make_account(client, manager, name="Boutique 5", lat=45.71, lng=4.81)  # in the file
    body = csv_body(shops(300), ";").encode("cp1252")
    here = (await post_import(client, manager, body, dry_run="true", on_duplicate="update")).json()
    children: list[int] = []
    in_child = planning.plan_in_child

    async def counted(*args: Any) -> list[planning.Planned]:
        children.append(len(args[0].rows))
        return await in_child(*args)

    monkeypatch.setattr(planning, "plan_in_child", counted)
    monkeypatch.setattr(planning, "IN_PROCESS_MAX", 0)
    started = await start(client, manager, body, on_duplicate="update")
    there = await finished(client, manager, started["import_id"])
    assert children == [301]
    assert {k: there[k] for k in REPORTED} == {k: here[k] for k in REPORTED}
    assert (there["created"], there["updated"], there["error_count"]) == (297, 1, 2), there
    assert len(await accounts()) == 298


async def test_progress_while_the_rows_are_written(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    started = await start(client, manager, csv_body(shops(2000)))
    # While something else holds the writer, the job waits between two of its batches:
    # the import is seen running, part way.
    async with db.write_transaction():
        status = await import_status(client, manager, started["import_id"])
    assert status["state"] == "running" and status["written"] < status["rows"] == 2001, status
    done = await finished(client, manager, started["import_id"])
    assert done["state"] == "done" and done["created"] == 1998, done
    items = await db.fetch("SELECT COUNT(*) AS n FROM import_items")
    assert items[0]["n"] == 1998
    if db.is_postgres():
        # The tables it grew were analyzed at its end: queries on them are planned for
        # their thousands of rows, not for the empty tables they were (server/core/bulk.py).
        counted = await db.fetch(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN"
            " ('accounts', 'sync_changes', 'history', 'import_items')"
        )
        assert {r["relname"]: r["reltuples"] >= 1998 for r in counted} == {
            "accounts": True,
            "sync_changes": True,
            "history": True,
            "import_items": True,
        }, counted


async def sync_an_edit(client: Any, who: Login, client_id: str, mid: int, account_id: str) -> float:
    """A phone's sync with one edit of `account_id`: how long it took, in seconds."""
    write = {"mid": mid, "table": "accounts", "id": account_id, "op": "upsert",
             "fields": {"city": f"Lyon {mid}"}, "base_seq": None,
             "hlc": [int(time.time() * 1000), 0]}  # fmt: skip
    body = {"protocol": 1, "client_id": client_id, "mutations": [write], "pull_limit": 50}
    began = time.perf_counter()
    response = await client.post("/api/sync/v1", json=body, headers=who.headers)
    assert response.json()["ack"]["results"][0]["status"] == "applied", response.text
    return time.perf_counter() - began


async def test_phones_sync_between_the_import_s_batches(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    mine = await make_account(client, rep, name="My shop")
    client_id = new_id()
    waits: list[float] = []
    # As `fieldcrm serve` does once started: what is loaded by then (here, the test run's
    # modules and objects) is left out of full collections, which would otherwise hold the
    # loop for as long as the collector takes to go through all of them.
    gc.collect()
    gc.freeze()
    try:
        async with LoopBusy() as watch:
            import_id = (await start(client, manager, csv_body(shops(2000))))["import_id"]
            while (await import_status(client, manager, import_id))["state"] == "running":
                waits.append(await sync_an_edit(client, rep, client_id, len(waits) + 1, mine["id"]))
                await asyncio.sleep(0.02)
    finally:
        gc.unfreeze()
    assert (await import_status(client, manager, import_id))["created"] == 1998
    # The phone was served while the import ran, and never waited for long.
    assert len(waits) >= 3, waits
    assert watch.worst < BATCH_HELD_S, watch.worst
    assert sorted(waits)[len(waits) // 2] < 0.5, waits


async def test_a_bad_file_is_refused_on_the_request(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    for body, status, error in [
        (b"", 422, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", 415, "unsupported_media_type"),
        (b"city\nLyon\n", 422, "no_header"),
        ("name\n" + "".join(f"Shop {n}\n" for n in range(50_001)), 413, "too_many_rows"),
    ]:
        response = await post_import(client, manager, body, background="true")
        assert response.status_code == status, response.text
        assert response.json()["error"] == error
    response = await post_import(client, manager, "name\nShop\n", background="maybe")
    assert response.status_code == 400
    assert not await db.fetch("SELECT id FROM imports")


async def test_at_most_two_at_once(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    body = csv_body(shops(2000))
    first = await start(client, manager, body)
    second = await start(client, manager, body)
    response = await post_import(client, manager, body, background="true")
    assert response.status_code == 429 and response.json()["error"] == "busy", response.text
    for started in (first, second):
        assert (await finished(client, manager, started["import_id"]))["state"] == "done"
    await start(client, manager, "name\nOne more\n")
    await importing.wait_for_imports()


async def test_an_import_whose_server_stopped_is_failed_and_can_be_reverted(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    started = await start(client, manager, csv_body(shops(2000)))
    while (await import_status(client, manager, started["import_id"]))["written"] == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await importing.stop_imports()  # what the server does when it stops
    status = await import_status(client, manager, started["import_id"])
    assert status["state"] == "failed" and status["failure"] == "The import was stopped."
    assert 0 < status["created"] < 1998, status
    assert len(await accounts()) == status["created"]
    reverted = await client.delete(f"/api/import/{started['import_id']}", headers=manager.headers)
    assert reverted.status_code == 200 and reverted.json()["deleted"] == status["created"]
    assert not await accounts()

    # A process that died leaves its import "running"; its heartbeat says it stopped.
    started = await start(client, manager, "name\nShop\n")
    await importing.wait_for_imports()
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    await db.fetch(
        "UPDATE imports SET state = {}, heartbeat_at = {} WHERE id = {}",
        "running",
        long_ago,
        started["import_id"],
    )
    status = await import_status(client, manager, started["import_id"])
    assert status["state"] == "failed" and "stopped" in status["failure"]
    reverted = await client.delete(f"/api/import/{started['import_id']}", headers=manager.headers)
    assert reverted.status_code == 200 and reverted.json()["deleted"] == 1


async def test_a_large_workbook_is_read_without_holding_the_loop(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    workbook = openpyxl.Workbook()
    sheet: Any = workbook.active
    for row in shops(6000):
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    gc.collect()
    gc.freeze()  # as in the test above
    try:
        async with LoopBusy() as watch:
            import_id = (await start(client, manager, out.getvalue()))["import_id"]
            done = await finished(client, manager, import_id)
    finally:
        gc.unfreeze()
    assert done["created"] == 5998 and done["encoding"] == "xlsx", done
    assert watch.worst < BATCH_HELD_S, watch.worst
