"""The v1.1 server-kept fields the team report reads, kept by the one writer whoever
writes (SPEC section 3): accounts.created_by and last_visit_at, tasks.done_at,
deals.stage_changed_at; and the migration that fills them in for rows made before them
gives the values the writer gives. Both engines."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

from server import db
from server.auth.services import create_user
from server.core.actor import Actor
from server.core.writer import Edit, Source, writing
from tests.factories import new_id

BACKFILL = importlib.import_module(
    "server.core.piccolo_migrations.records_2026_12_06t09_10_00_000000"
)
KEPT = {
    "accounts": ("created_by", "last_visit_at"),
    "tasks": ("done_at",),
    "deals": ("stage_changed_at",),
}


async def actor(role: str = "rep") -> Actor:
    name = f"{role}-{new_id()[:8]}"
    user_id, _ = await create_user(name, "correct-horse-9", role, "north")
    rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
    return Actor(user_id=user_id, username=name, role=role, team_id=str(rows[0]["team_id"]))


def at(days: float) -> str:
    return (datetime(2026, 11, 1, 12, tzinfo=UTC) + timedelta(days=days)).isoformat()


async def kept(table: str, record_id: str) -> dict[str, Any]:
    columns = ", ".join(KEPT[table])
    [row] = await db.fetch(f"SELECT {columns} FROM {table} WHERE id = {{}}", record_id)
    return {k: (str(v) if k == "created_by" and v else v) for k, v in row.items()}


async def test_the_writer_keeps_them_and_the_migration_fills_them_in(started_db: Any) -> None:
    rep = await actor()
    mate = await actor()
    shop, other = new_id(), new_id()
    visits = [new_id() for _ in range(4)]
    task, deal = new_id(), new_id()
    async with writing(Source.REST) as writer:
        await writer.apply(rep, Edit("accounts", shop, {"name": "Shop"}))
        await writer.apply(mate, Edit("accounts", other, {"name": "Other"}))
        assert (await kept("accounts", shop))["last_visit_at"] is None
        for n, visit in enumerate(visits):
            fields = {"account_id": shop, "started_at": at(n)}
            await writer.apply(rep, Edit("visits", visit, fields))
        await writer.apply(rep, Edit("tasks", task, {"title": "Call", "account_id": shop}))
        await writer.apply(rep, Edit("deals", deal, {"title": "Order", "account_id": shop}))
    accounts = {shop: await kept("accounts", shop), other: await kept("accounts", other)}
    assert accounts[shop] == {
        "created_by": rep.user_id,
        "last_visit_at": datetime.fromisoformat(at(3)),
    }
    assert accounts[other] == {"created_by": mate.user_id, "last_visit_at": None}
    assert (await kept("tasks", task))["done_at"] is None
    made = (await kept("deals", deal))["stage_changed_at"]
    assert made is not None

    async with writing(Source.REST) as writer:
        # The latest visit moved back in time, then one deleted, then one moved away.
        await writer.apply(rep, Edit("visits", visits[3], {"started_at": at(-5)}))
        assert (await kept("accounts", shop))["last_visit_at"] == datetime.fromisoformat(at(2))
        await writer.apply(rep, Edit("visits", visits[2], op="delete"))
        assert (await kept("accounts", shop))["last_visit_at"] == datetime.fromisoformat(at(1))
        await writer.apply(rep, Edit("visits", visits[1], {"account_id": other}))
        assert (await kept("accounts", shop))["last_visit_at"] == datetime.fromisoformat(at(0))
        assert (await kept("accounts", other))["last_visit_at"] == datetime.fromisoformat(at(1))
        await writer.apply(rep, Edit("tasks", task, {"done": True}))
        done = (await kept("tasks", task))["done_at"]
        assert done is not None
        await writer.apply(rep, Edit("deals", deal, {"stage": "won"}))
        won = (await kept("deals", deal))["stage_changed_at"]
        assert won is not None and won > made
        await writer.apply(rep, Edit("deals", deal, {"title": "Big order"}))
        assert (await kept("deals", deal))["stage_changed_at"] == won
    expected = {
        (table, record_id): await kept(table, record_id)
        for table, record_id in (
            ("accounts", shop),
            ("accounts", other),
            ("tasks", task),
            ("deals", deal),
        )
    }

    # Rows from before the fields: the migration's statements fill them in as the writer did.
    async with db.write_transaction():
        for table, columns in KEPT.items():
            await db.fetch(f"UPDATE {table} SET {', '.join(f'{c} = NULL' for c in columns)}")
        for statement in BACKFILL.POSTGRES if db.is_postgres() else BACKFILL.SQLITE:
            await db.fetch(statement.replace("{", "{{").replace("}", "}}"))
    for (table, record_id), values in expected.items():
        assert await kept(table, record_id) == values, (table, values)

    # A task marked done again keeps when it was done; undone, it has no done_at. (The
    # migration, from the stamps alone, would take the later write: `done` set again to
    # the same value moves its stamp.)
    async with writing(Source.REST) as writer:
        await writer.apply(rep, Edit("tasks", task, {"done": True, "title": "Called"}))
        assert (await kept("tasks", task))["done_at"] == done
        await writer.apply(rep, Edit("tasks", task, {"done": False}))
    assert (await kept("tasks", task))["done_at"] is None
