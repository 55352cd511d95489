"""Planned visits (SPEC sections 3 and 14) on both engines: tasks of kind `visit`, and a
logged visit that marks its author's planned visits there done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import Login, login_as

NOW = datetime.now(UTC).replace(microsecond=0)


async def create(client: Any, who: Login, table: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/api/{table}", json=fields, headers=who.headers)
    assert response.status_code == 201, response.text
    row: dict[str, Any] = response.json()
    return row


async def task(client: Any, who: Login, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/tasks/{task_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


async def test_a_task_is_a_todo_unless_it_is_a_planned_visit(client: Any) -> None:
    rep = await login_as(client)
    shop = await create(client, rep, "accounts", name="Shop")
    todo = await create(client, rep, "tasks", title="Call")
    assert todo["kind"] == "todo"
    plan = await create(
        client,
        rep,
        "tasks",
        title="Visit",
        kind="visit",
        account_id=shop["id"],
        due_at=NOW.isoformat(),
    )
    assert plan["kind"] == "visit"
    bad = await client.post(
        "/api/tasks", json={"title": "x", "kind": "meeting"}, headers=rep.headers
    )
    assert bad.status_code == 422
    assert "kind" in bad.json()["detail"]


async def test_logging_a_visit_marks_the_planned_visits_there_done(client: Any) -> None:
    rep = await login_as(client)
    mate = await login_as(client)
    shop = await create(client, rep, "accounts", name="Shop")
    other = await create(client, rep, "accounts", name="Elsewhere")

    def plan(
        who_id: str, account: dict[str, Any], due: datetime, kind: str = "visit"
    ) -> dict[str, Any]:
        return {"title": "Visit", "kind": kind, "account_id": account["id"],
                "due_at": due.isoformat(), "assignee_id": who_id}  # fmt: skip

    today = await create(client, rep, "tasks", **plan(rep.user_id, shop, NOW + timedelta(hours=2)))
    overdue = await create(client, rep, "tasks", **plan(rep.user_id, shop, NOW - timedelta(days=3)))
    next_week = await create(
        client, rep, "tasks", **plan(rep.user_id, shop, NOW + timedelta(days=7))
    )
    todo = await create(client, rep, "tasks", **plan(rep.user_id, shop, NOW, kind="todo"))
    mates = await create(client, rep, "tasks", **plan(mate.user_id, shop, NOW))
    elsewhere = await create(client, rep, "tasks", **plan(rep.user_id, other, NOW))

    await create(client, rep, "visits", account_id=shop["id"], started_at=NOW.isoformat())

    for done in (today, overdue):
        row = await task(client, rep, done["id"])
        assert row["done"] is True
        assert row["done_at"] is not None
        assert datetime.fromisoformat(row["done_at"]) == NOW
    for still_open in (next_week, todo, mates, elsewhere):
        assert (await task(client, rep, still_open["id"]))["done"] is False


async def test_a_visit_synced_from_a_phone_marks_the_plan_done_there_too(client: Any) -> None:
    rep = await login_as(client)
    shop = await create(client, rep, "accounts", name="Shop")
    planned = await create(
        client, rep, "tasks", title="Visit", kind="visit", account_id=shop["id"],
        due_at=NOW.isoformat(),
    )  # fmt: skip
    ms = int(NOW.timestamp() * 1000)
    body = {
        "protocol": 1, "client_id": "phone-1", "cursor": None,
        "mutations": [{"mid": 1, "table": "visits", "id": "0b7c4b52-7f55-4a55-9d5e-4a8c3f1e0001",
                       "op": "upsert", "base_seq": None, "hlc": [ms, 0],
                       "fields": {"account_id": shop["id"], "started_at": NOW.isoformat()}}],
    }  # fmt: skip
    answer = (await client.post("/api/sync/v1", json=body, headers=rep.headers)).json()
    assert answer["ack"]["results"][0]["status"] == "applied"
    pulled = [c for c in answer["changes"] if c["table"] == "tasks" and c["id"] == planned["id"]]
    assert pulled and pulled[0]["row"]["done"] is True
