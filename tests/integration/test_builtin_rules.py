"""The built-in rules (docs/automation.md) through real sync requests, on both engines: a
deal marked won makes its account a customer; a visit with outcome `follow_up` whose author
has no open task there gets one, due three working days later in the organisation's time
zone. Their writes are the server's (history source `system`), in the same transaction as
the write that called for them, and reach phones like any change; an admin switches each
off."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server import db
from server.core.automation import follow_up_id
from server.settings import Settings
from tests.factories import Login, login_as, make_account, new_id

TZ = "America/New_York"
ZONE = ZoneInfo(TZ)
# A Friday evening in New York, already Saturday in UTC: three working days later is the
# next Wednesday evening there (Thursday in UTC), not the Wednesday a UTC count gives.
FRIDAY_EVENING = datetime(2026, 12, 18, 22, 30, tzinfo=ZONE)
WEDNESDAY_EVENING = datetime(2026, 12, 23, 22, 30, tzinfo=ZONE)


@pytest.fixture
def settings(database: Any) -> Settings:
    return Settings(database=database.config, timezone=TZ)


@dataclass
class Phone:
    who: Login
    client_id: str = field(default_factory=new_id)
    mids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    cursor: str | None = None
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    async def sync(self, client: Any, *writes: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
        """Send `writes` (table, id, fields) and pull everything there is."""
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        mutations = [
            {"mid": next(self.mids), "table": table, "id": record_id, "op": "upsert",
             "fields": fields, "base_seq": None, "hlc": [now_ms, n]}
            for n, (table, record_id, fields) in enumerate(writes)
        ]  # fmt: skip
        answer: dict[str, Any] = {}
        while True:
            body = {"protocol": 1, "client_id": self.client_id, "cursor": self.cursor,
                    "mutations": mutations}  # fmt: skip
            response = await client.post("/api/sync/v1", json=body, headers=self.who.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            answer = answer or page
            for result in page["ack"]["results"]:
                assert result["status"] != "rejected", result
            for change in page["changes"]:
                key = (change["table"], change["id"])
                if change["op"] == "put":
                    self.rows[key] = change["row"]
                else:
                    self.rows.pop(key, None)
            self.cursor, mutations = page["cursor"], []
            if not page["has_more"]:
                return answer

    def tasks_on(self, account_id: str) -> list[dict[str, Any]]:
        rows = self.rows.items()
        return [r for (t, _), r in rows if t == "tasks" and r["account_id"] == account_id]


async def history(table: str, record_id: str) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT source, op, user_id, fields FROM history WHERE record_id = {} ORDER BY seq",
        record_id,
    )


async def switch(client: Any, who: Login, **rules: bool) -> Any:
    return await client.patch("/api/org/rules", json=rules, headers=who.headers)


async def test_a_deal_won_on_a_phone_makes_its_account_a_customer_on_every_phone(
    client: Any,
) -> None:
    rep = await login_as(client, "rep", "north")
    mate = await login_as(client, "rep", "north")
    account = await make_account(client, rep, name="Bakery Martin")
    assert account["status"] == "prospect"
    phone, mates_phone = Phone(rep), Phone(mate)
    await phone.sync(client)
    await mates_phone.sync(client)

    deal_id = new_id()
    deal = {"account_id": account["id"], "title": "Ovens", "stage": "proposal", "amount": 900}
    await phone.sync(client, ("deals", deal_id, deal))
    assert phone.rows[("accounts", account["id"])]["status"] == "prospect"  # not won yet

    answer = await phone.sync(client, ("deals", deal_id, {"stage": "won"}))
    # The account's change came back in the very answer to the write that called for it.
    pulled = [c for c in answer["changes"] if c["id"] == account["id"]]
    assert pulled and pulled[0]["row"]["status"] == "customer"
    await mates_phone.sync(client)
    assert mates_phone.rows[("accounts", account["id"])]["status"] == "customer"

    entries = await history("accounts", account["id"])
    assert entries[-1]["source"] == "system" and entries[-1]["user_id"] is None
    assert '"status":{"new":"customer","old":"prospect"}' in entries[-1]["fields"]
    # Winning it again (or another deal) changes nothing more.
    before = len(entries)
    await phone.sync(client, ("deals", new_id(), {**deal, "title": "More", "stage": "won"}))
    assert len(await history("accounts", account["id"])) == before


async def test_a_deal_created_won_through_rest_and_an_inactive_account(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    account = await make_account(client, manager, name="Old shop", status="inactive")
    response = await client.post(
        "/api/deals",
        json={"account_id": account["id"], "title": "Comeback", "stage": "won"},
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text
    row = (await client.get(f"/api/accounts/{account['id']}", headers=manager.headers)).json()
    assert row["account"]["status"] == "customer"
    assert (await history("accounts", account["id"]))[-1]["source"] == "system"


async def test_a_follow_up_visit_gets_a_task_three_working_days_later_in_the_org_time_zone(
    client: Any,
) -> None:
    rep = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    account = await make_account(client, rep, name="Cave des Canuts")
    phone, managers_phone = Phone(rep), Phone(manager)

    visit_id = new_id()
    visit = {"account_id": account["id"], "started_at": FRIDAY_EVENING.isoformat(),
             "outcome": "follow_up", "summary": "Wants samples"}  # fmt: skip
    answer = await phone.sync(client, ("visits", visit_id, visit))
    made = [c for c in answer["changes"] if c["table"] == "tasks"]
    assert len(made) == 1, made
    task = made[0]["row"]
    assert task["id"] == follow_up_id(visit_id)
    assert task["assignee_id"] == rep.user_id and task["account_id"] == account["id"]
    assert task["author_id"] is None and task["kind"] == "todo" and task["done"] is False
    assert task["title"] == "Follow up: Cave des Canuts"
    assert datetime.fromisoformat(task["due_at"]) == WEDNESDAY_EVENING
    [entry] = await history("tasks", task["id"])
    assert (entry["source"], entry["op"], entry["user_id"]) == ("system", "create", None)
    await managers_phone.sync(client)
    assert ("tasks", task["id"]) in managers_phone.rows

    # Editing the visit (its summary, its outcome away and back) never makes a second one,
    # even once its assignee deleted the first.
    await phone.sync(client, ("visits", visit_id, {"summary": "Samples on Monday"}))
    deleted = await client.delete(f"/api/tasks/{task['id']}", headers=rep.headers)
    assert deleted.status_code == 204
    await phone.sync(client, ("visits", visit_id, {"outcome": "met"}))
    await phone.sync(client, ("visits", visit_id, {"outcome": "follow_up"}))
    rows = await db.fetch("SELECT id FROM tasks WHERE account_id = {}", account["id"])
    assert [str(r["id"]) for r in rows] == [task["id"]]


async def test_no_follow_up_task_when_the_phone_sends_one_or_one_is_open(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    shop = await make_account(client, rep, name="Shop")
    other = await make_account(client, rep, name="Other shop")
    phone = Phone(rep)
    started = datetime.now(UTC).replace(microsecond=0).isoformat()

    # The app's visit form: the visit first, its follow-up task after, in one request.
    own_task = {"account_id": shop["id"], "title": "Bring samples", "assignee_id": rep.user_id}
    await phone.sync(
        client,
        ("visits", new_id(), {"account_id": shop["id"], "started_at": started,
                              "outcome": "follow_up"}),
        ("tasks", new_id(), own_task),
    )  # fmt: skip
    assert [t["title"] for t in phone.tasks_on(shop["id"])] == ["Bring samples"]

    # A task already open there for the visit's author: none either.
    await phone.sync(client, ("tasks", new_id(), {**own_task, "account_id": other["id"]}))
    visit = {"account_id": other["id"], "started_at": started, "outcome": "follow_up"}
    await phone.sync(client, ("visits", new_id(), visit))
    assert len(phone.tasks_on(other["id"])) == 1
    # Once done, the next follow-up visit gets one.
    [open_task] = phone.tasks_on(other["id"])
    await phone.sync(client, ("tasks", open_task["id"], {"done": True}))
    await phone.sync(client, ("visits", new_id(), visit))
    assert len(phone.tasks_on(other["id"])) == 2


async def test_an_admin_switches_each_rule_off_and_on(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    admin = await login_as(client, "admin", "hq")
    read = await client.get("/api/org/rules", headers=rep.headers)
    assert read.status_code == 200
    assert read.json() == {"rules": {"won_deal_makes_customer": True, "follow_up_task": True}}

    for who in (rep, manager):
        refused = await switch(client, who, follow_up_task=False)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    for body in ({}, {"nope": True}, {"follow_up_task": "off"}, [1]):
        bad = await client.patch("/api/org/rules", json=body, headers=admin.headers)
        assert 400 <= bad.status_code < 500 and "detail" in bad.json(), (body, bad.text)
    assert (await client.get("/api/org/rules", headers=rep.headers)).json()["rules"] == {
        "won_deal_makes_customer": True,
        "follow_up_task": True,
    }

    answer = await switch(client, admin, follow_up_task=False, won_deal_makes_customer=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rules"] == {"won_deal_makes_customer": False, "follow_up_task": False}
    account = await make_account(client, rep, name="Quiet shop")
    phone = Phone(rep)
    started = datetime.now(UTC).isoformat()
    await phone.sync(
        client,
        ("visits", new_id(), {"account_id": account["id"], "started_at": started,
                              "outcome": "follow_up"}),
        ("deals", new_id(), {"account_id": account["id"], "title": "Won", "stage": "won"}),
    )  # fmt: skip
    assert phone.tasks_on(account["id"]) == []
    assert phone.rows[("accounts", account["id"])]["status"] == "prospect"

    # One back on: only that one acts.
    answer = await switch(client, admin, won_deal_makes_customer=True)
    assert answer.json()["rules"] == {"won_deal_makes_customer": True, "follow_up_task": False}
    await phone.sync(
        client,
        ("visits", new_id(), {"account_id": account["id"], "started_at": started,
                              "outcome": "follow_up"}),
        ("deals", new_id(), {"account_id": account["id"], "title": "Won 2", "stage": "won"}),
    )  # fmt: skip
    assert phone.tasks_on(account["id"]) == []
    assert phone.rows[("accounts", account["id"])]["status"] == "customer"


async def test_a_replayed_request_and_a_follow_up_due_over_a_weekend(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    account = await make_account(client, rep, name="Shop")
    monday = datetime(2026, 12, 14, 10, 0, tzinfo=ZONE)
    visit_id = new_id()
    body = {
        "protocol": 1, "client_id": new_id(), "cursor": None,
        "mutations": [{"mid": 1, "table": "visits", "id": visit_id, "op": "upsert",
                       "base_seq": None, "hlc": [int(monday.timestamp() * 1000), 0],
                       "fields": {"account_id": account["id"], "started_at": monday.isoformat(),
                                  "outcome": "follow_up"}}],
    }  # fmt: skip
    for _ in range(2):  # the phone did not get the first answer and sends it again
        response = await client.post("/api/sync/v1", json=body, headers=rep.headers)
        assert response.status_code == 200, response.text
    rows = await db.fetch("SELECT due_at FROM tasks WHERE account_id = {}", account["id"])
    assert len(rows) == 1
    due = rows[0]["due_at"]
    due = datetime.fromisoformat(due) if isinstance(due, str) else due
    assert due.astimezone(ZONE) == monday + timedelta(days=3)  # Thursday, same time
