"""A merge in batches (docs/merge.md), on both engines: each batch its own write
transaction, so the writer is free between them; the end is the same as a merge in one
transaction; a merge stopped between batches (as a stopped process leaves it) is finished
by `resume_merges`, and writes made meanwhile are not lost; an undo in batches, an undo
stopped half-way, an undo of a merge still running, and a merge whose survivor goes away
while it runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server import db
from server.auth.services import actor_for_user
from server.core.actor import Actor
from server.core.history import verify
from server.errors import ApiError
from server.merging import services
from server.merging.schemas import MergeRequest
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import Login, make_child
from tests.integration.test_merge import CHILDREN, get, merge, undo, world


async def actor(login: Login) -> Actor:
    found = await actor_for_user(login.user_id)
    assert found is not None
    return found


def request(keep: dict[str, Any], dup: dict[str, Any]) -> MergeRequest:
    return MergeRequest(
        table="accounts",
        survivor_id=keep["id"],
        merged_ids=[dup["id"]],
        fields={"phone": dup["id"], "lat": dup["id"]},
    )


async def account_of(table: str, record_id: str) -> str:
    rows = await db.fetch(f"SELECT account_id FROM {table} WHERE id = {{}}", record_id)
    return str(rows[0]["account_id"])


async def state(merge_id: str) -> dict[str, Any]:
    rows = await db.fetch("SELECT running, undoing, undone_at FROM merges WHERE id = {}", merge_id)
    row = rows[0]
    return {"running": bool(row["running"]), "undoing": bool(row["undoing"]),
            "undone": row["undone_at"] is not None}  # fmt: skip


async def test_a_merge_in_batches_ends_as_a_merge_in_one(client: Any) -> None:
    w = await world(client)
    manager, keep, dup = w["manager"], w["keep"], w["dup"]
    seq_before = int((await db.fetch("SELECT MAX(seq) AS s FROM sync_changes"))[0]["s"])
    answer = await services.merge(await actor(manager), request(keep, dup), batch=2)
    assert answer.fields == ["lat", "lng", "phone"]
    assert answer.moved == {t: 1 for t in (*CHILDREN, "conflicts", "rejections")}
    assert await state(answer.merge_id) == {"running": False, "undoing": False, "undone": False}
    for table, child_id in w["children"].items():
        assert await account_of(table, child_id) == keep["id"], table
    for table in ("conflicts", "rejections"):
        assert await account_of(table, w[table[:-1]]) == keep["id"], table
    assert (await get(client, manager, "accounts", dup["id"])).status_code == 307
    # Three write transactions (2 + 2 + 1 records, the last one merging away): the
    # history's entries of the moves were written in three commits, each seq block apart.
    moved = await db.fetch(
        "SELECT seq FROM merge_items WHERE merge_id = {} AND kind = {} AND seq > {} ORDER BY seq",
        answer.merge_id,
        "moved",
        0,
    )
    assert len(moved) == 5 and all(int(r["seq"]) > seq_before for r in moved)

    back = await services.undo(await actor(manager), answer.merge_id, batch=2)
    assert back.restored == [dup["id"]] and back.fields == ["lat", "lng", "phone"]
    assert back.moved_back == answer.moved and back.kept == []
    for table, child_id in w["children"].items():
        assert await account_of(table, child_id) == dup["id"], table
    for table in ("conflicts", "rejections"):
        assert await account_of(table, w[table[:-1]]) == dup["id"], table
    survivor = (await get(client, manager, "accounts", keep["id"])).json()
    assert survivor.get("phone") is None and survivor["lat"] == keep["lat"]
    assert await state(answer.merge_id) == {"running": False, "undoing": False, "undone": True}
    assert await verify() == []


async def test_a_merge_stopped_between_batches_is_finished_on_resume(client: Any) -> None:
    w = await world(client)
    manager, rep, keep, dup = w["manager"], w["rep"], w["keep"], w["dup"]
    phone = Device(client, rep)
    await phone.pull_all()
    job = await services.start(await actor(manager), request(keep, dup), batch=2)
    await services.run(job, 2, batches=1)  # ... and the process stops here
    assert await state(job.merge_id) == {"running": True, "undoing": False, "undone": False}
    on_keep = [t for t, i in w["children"].items() if await account_of(t, i) == keep["id"]]
    assert len(on_keep) == 4  # two batches of two

    # Meanwhile both accounts are live: phones sync, write to both, and their moves arrive.
    visit = new_id()
    fields = {"account_id": dup["id"], "started_at": "2026-12-06T09:00:00Z"}
    data = await phone.sync(
        phone.write("visits", visit, fields),
        phone.write("accounts", dup["id"], {"website": "laurent.fr"}, hlc=(now_ms(), 0)),
    )
    assert [r["status"] for r in data["ack"]["results"]] == ["applied", "applied"]
    await phone.pull_all()
    assert phone.row("contacts", w["children"]["contacts"])["account_id"] == keep["id"]  # type: ignore[index]
    # Another merge naming these records waits for this one to end.
    response = await merge(client, manager, {"table": "accounts", "survivor_id": dup["id"],
                                             "merged_ids": [keep["id"]]})  # fmt: skip
    assert response.status_code == 409, response.text
    assert response.json() == {**response.json(), "error": "merging", "merge_id": job.merge_id}

    assert await services.resume_merges() == 1
    assert await services.resume_merges() == 0
    assert await state(job.merge_id) == {"running": False, "undoing": False, "undone": False}
    for table, child_id in w["children"].items():
        assert await account_of(table, child_id) == keep["id"], table
    assert await account_of("visits", visit) == keep["id"]  # written meanwhile: moved too
    assert (await get(client, manager, "accounts", dup["id"])).json()["merged_into"] == keep["id"]
    survivor = (await get(client, manager, "accounts", keep["id"])).json()
    assert survivor["phone"] == dup["phone"]
    await phone.pull_all()
    assert phone.row("accounts", dup["id"]) is None

    # Undone in batches, stopped after its first, resumed.
    with pytest.raises(ApiError) as undone:
        await services.undo(await actor(rep), job.merge_id)
    assert undone.value.status == 403
    await services.undo(await actor(manager), job.merge_id, batch=2, batches=0)
    assert await state(job.merge_id) == {"running": False, "undoing": True, "undone": True}
    response = await undo(client, manager, job.merge_id)
    assert response.status_code == 409 and response.json()["error"] == "undone"
    assert await services.resume_merges() == 1
    assert await state(job.merge_id) == {"running": False, "undoing": False, "undone": True}
    for table, child_id in w["children"].items():
        assert await account_of(table, child_id) == dup["id"], table
    assert await account_of("visits", visit) == dup["id"]  # it hung off dup when it moved
    back = (await get(client, manager, "accounts", dup["id"])).json()
    assert back["website"] == "laurent.fr"  # written to it while the merge ran
    assert (await get(client, manager, "accounts", keep["id"])).json().get("phone") is None
    assert await verify() == []


async def test_an_undo_of_a_running_merge_stops_it_and_puts_back_what_moved(
    client: Any,
) -> None:
    w = await world(client)
    manager, keep, dup = w["manager"], w["keep"], w["dup"]
    job = await services.start(await actor(manager), request(keep, dup), batch=2)
    response = await undo(client, manager, job.merge_id)
    assert response.status_code == 200, response.text
    assert response.json()["moved_back"] == {"contacts": 1, "visits": 1}
    assert response.json()["fields"] == []
    with pytest.raises(ApiError) as stopped:
        await services.run(job, 2)
    assert (stopped.value.status, stopped.value.error) == (409, "undone")
    for table, child_id in w["children"].items():
        assert await account_of(table, child_id) == dup["id"], table
    assert (await get(client, manager, "accounts", dup["id"])).status_code == 200
    assert await state(job.merge_id) == {"running": False, "undoing": False, "undone": True}
    # Both records are free to merge again.
    again = await merge(client, manager, {"table": "accounts", "survivor_id": keep["id"],
                                          "merged_ids": [dup["id"]]})  # fmt: skip
    assert again.status_code == 200, again.text


async def test_a_merge_whose_record_goes_away_while_it_runs_is_put_back(client: Any) -> None:
    w = await world(client)
    manager, rep, keep, dup = w["manager"], w["rep"], w["keep"], w["dup"]
    other = await make_child(client, rep, "notes", dup["id"], body="Stays")
    job = await services.start(await actor(manager), request(keep, dup), batch=2)
    moved = [t for t, i in w["children"].items() if await account_of(t, i) == keep["id"]]
    assert moved == ["contacts", "visits"]
    response = await client.delete(f"/api/accounts/{dup['id']}", headers=manager.headers)
    assert response.status_code == 204
    with pytest.raises(ApiError) as refused:
        await services.run(job, 2)
    assert (refused.value.status, refused.value.error) == (409, "deleted")
    assert await state(job.merge_id) == {"running": False, "undoing": False, "undone": True}
    # What had moved could not go back to a deleted account: it stays on the survivor.
    for table in moved:
        assert await account_of(table, w["children"][table]) == keep["id"]
    assert await account_of("notes", other["id"]) == dup["id"]
    assert (await get(client, manager, "accounts", keep["id"])).status_code == 200
    assert await verify() == []


async def test_a_merge_whose_request_goes_away_still_ends(client: Any) -> None:
    """The client gives up waiting (its request is cancelled) after the first batch: the
    batches go on to the merge's end, rather than leaving it half-way until a restart."""
    w = await world(client)
    manager, keep, dup = w["manager"], w["keep"], w["dup"]
    task = asyncio.create_task(services.merge(await actor(manager), request(keep, dup), batch=1))
    running: list[dict[str, Any]] = []
    while not running and not task.done():
        running = await db.fetch("SELECT id FROM merges WHERE running = {}", True)
        await asyncio.sleep(0.001)
    assert running, "the merge ended before it could be cancelled"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.gather(*services._going_on)
    assert await state(str(running[0]["id"])) == {
        "running": False, "undoing": False, "undone": False
    }  # fmt: skip
    for table, child_id in w["children"].items():
        assert await account_of(table, child_id) == keep["id"], table
    assert (await get(client, manager, "accounts", dup["id"])).status_code == 307
