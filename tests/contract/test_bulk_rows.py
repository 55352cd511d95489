"""db.insert_rows, db.update_rows and db.any_of (server/db/bulk.py), on both engines: many
rows in one statement on PostgreSQL (columns as arrays), multi-row statements of a few
sizes on SQLite, with the same results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from server import db
from server.db.setup import driver

COLUMNS = ("seq", "record_table", "record_id", "scope", "op")


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def test_rows_go_in_and_come_back_by_id(started_db: Any) -> None:
    ids = _ids(300)
    rows = [[n + 1, "accounts", record_id, "team:x", "put"] for n, record_id in enumerate(ids)]
    async with db.write_transaction():
        await db.insert_rows("sync_changes", COLUMNS, rows)
        await db.insert_rows("sync_changes", COLUMNS, [])  # nothing to do, no statement
    wanted = ids[::7]
    where, args = db.any_of("record_id", wanted)
    found = await db.fetch(f"SELECT seq, record_id FROM sync_changes WHERE {where}", *args)
    assert sorted((r["seq"], r["record_id"]) for r in found) == [
        (ids.index(i) + 1, i) for i in wanted
    ]


async def test_rows_are_updated_by_id_and_nulls_go_through(started_db: Any) -> None:
    now = datetime.now(UTC)
    teams = [[team_id, f"Team {n}", now] for n, team_id in enumerate(_ids(5))]
    async with db.write_transaction():
        await db.insert_rows("teams", ("id", "name", "created_at"), teams)
        await db.update_rows("teams", ("name",), [["Renamed", teams[1][0]], ["Again", teams[3][0]]])
    rows = await db.fetch("SELECT id, name FROM teams")
    assert sorted(r["name"] for r in rows) == ["Again", "Renamed", "Team 0", "Team 2", "Team 4"]
    user_id = str(uuid.uuid4())
    await db.fetch(
        "INSERT INTO users (id, username, password_hash, role, team_id, created_at)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        user_id,
        "ann",
        "x",
        "rep",
        teams[0][0],
        now,
    )
    clients = ("user_id", "client_id", "last_mid")
    upsert = "ON CONFLICT (user_id, client_id) DO UPDATE SET last_mid = excluded.last_mid"
    token = ("id", "user_id", "created_at", "expires_at", "revoked_at", "token_hash")
    tokens = [[token_id, user_id, now, now, now, token_id] for token_id in _ids(2)]
    async with db.write_transaction():
        await db.insert_rows("sync_clients", clients, [[user_id, "a", 1], [user_id, "b", 2]])
        await db.insert_rows("sync_clients", clients, [[user_id, "a", 5]], upsert=upsert)
        await db.insert_rows("auth_tokens", token, tokens)
        await db.update_rows("auth_tokens", ("revoked_at",), [[None, tokens[1][0]]])
    mids = await db.fetch("SELECT client_id, last_mid FROM sync_clients ORDER BY client_id")
    assert [(r["client_id"], r["last_mid"]) for r in mids] == [("a", 5), ("b", 2)]
    revoked = await db.fetch("SELECT id, revoked_at FROM auth_tokens")
    assert {r["id"]: r["revoked_at"] is None for r in revoked} == {
        tokens[0][0]: False,
        tokens[1][0]: True,
    }


async def test_hundreds_of_rows_go_in_in_order_and_are_updated_in_pieces(
    started_db: Any,
) -> None:
    """More rows than one SQLite statement takes (256), in pieces of several sizes; a
    table with a search index (a trigger per row) keeps its index in step."""
    now = datetime.now(UTC)
    teams = [[team_id, f"Team {n}", now] for n, team_id in enumerate(_ids(301))]
    async with db.write_transaction():
        await db.insert_rows("teams", ("id", "name", "created_at"), teams)
    if not db.is_postgres():
        rows = await db.fetch("SELECT id FROM teams ORDER BY rowid")
        assert [r["id"] for r in rows] == [t[0] for t in teams]  # in the order given
    renamed = [[f"Renamed {n}" if n % 3 else None, t[0]] for n, t in enumerate(teams[:299])]
    async with db.write_transaction():
        await db.update_rows("teams", ("name",), [r for r in renamed if r[0] is not None])
        await db.update_rows("teams", ("created_at",), [[None, teams[0][0]]][:0])  # none
    names = {r["id"]: r["name"] for r in await db.fetch("SELECT id, name FROM teams")}
    expected = {t[0]: f"Renamed {n}" if n % 3 and n < 299 else t[1] for n, t in enumerate(teams)}
    assert names == expected


async def test_a_new_connection_has_met_every_array_type_before_its_first_request(
    started_db: Any,
) -> None:
    """asyncpg looks up a type it has not met with a catalogue query of several ms; the
    pool's set-up makes each connection meet them all, so none runs inside the writer's
    turn. (SQLite has no such lookup: there the statements simply run.)"""
    if not db.is_postgres():
        async with db.write_transaction():
            await db.insert_rows("sync_changes", COLUMNS, [[1, "notes", _ids(1)[0], "s", "put"]])
        return
    pool = driver().pool
    async with pool.acquire() as connection:
        seen: list[str] = []
        connection.add_query_logger(lambda record: seen.append(record.query))
        now = datetime.now(UTC)
        await connection.fetch(
            "SELECT count(*) FROM unnest($1::uuid[], $2::text[], $3::character varying[],"
            " $4::timestamp with time zone[], $5::boolean[], $6::bigint[], $7::integer[],"
            " $8::double precision[], $9::date[], $10::timestamp without time zone[])",
            _ids(1),
            ["a"],
            ["b"],
            [now],
            [True],
            [1],
            [1],
            [1.5],
            [now.date()],
            [now.replace(tzinfo=None)],
        )
    assert not [query for query in seen if "typeinfo" in query], seen
