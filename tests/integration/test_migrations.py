"""Migrations from an empty database, on both engines: every table and index appears, the
sync counters are seeded once, and running them again changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server import db
from server.settings import DatabaseConfig, parse_database_url
from server.tables import bind_tables
from tests.conftest import (
    ENGINES,
    create_pg_database,
    drop_pg_database,
    migrate_database,
    pg_url,
    require_postgres,
)

SYNC_INDEXES = {
    "sync_changes_scope_seq",
    "sync_changes_record",
    "sync_clients_user_client",
    "sync_results_user_client_mid",
}
# Indexes on what changes at every write, which nothing reads by: they only slow writes.
GONE_INDEXES = {"accounts_scope_seq", "accounts_seq", "tasks_seq", "conflicts_seq", "accounts_lat"}
# Indexes nothing reads by, or whose reads an index starting with the same column serves.
GONE_INDEXES |= {"accounts_scope", "accounts_owner_id", "accounts_team_id"}


def expected_tables() -> set[str]:
    from server.piccolo_conf import APP_REGISTRY
    from server.tables import ALL_TABLES

    names = {table._meta.tablename for table in ALL_TABLES}
    for app in APP_REGISTRY.app_configs.values():
        names |= {table._meta.tablename for table in app.table_classes}
    return names


@pytest.fixture(params=ENGINES)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseConfig]:
    """A database with nothing in it, not even Piccolo's migration table."""
    if request.param == "sqlite":
        yield parse_database_url(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
        return
    require_postgres()
    name = f"fieldcrm_empty_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    try:
        yield parse_database_url(pg_url(name))
    finally:
        drop_pg_database(name)


async def inspect(config: DatabaseConfig) -> dict[str, Any]:
    bind_tables(db.configure(config))
    await db.start()
    try:
        if config.is_postgres:
            tables = await db.fetch(
                "SELECT table_name AS name FROM information_schema.tables"
                " WHERE table_schema = 'public'"
            )
            indexes = await db.fetch(
                "SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'"
            )
        else:
            tables = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
            indexes = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'index'")
        meta = await db.fetch("SELECT key, value FROM sync_meta")
        applied = await db.fetch("SELECT app_name, name FROM migration ORDER BY id")
        return {
            "tables": {row["name"] for row in tables},
            "indexes": {row["name"] for row in indexes},
            "meta": {row["key"]: row["value"] for row in meta},
            "applied": [(row["app_name"], row["name"]) for row in applied],
        }
    finally:
        await db.stop()


def test_migrating_an_empty_database_twice(empty_database: DatabaseConfig) -> None:
    asyncio.run(migrate_database(empty_database))
    first = asyncio.run(inspect(empty_database))
    missing = expected_tables() - first["tables"]
    assert not missing, f"tables the migrations did not make: {missing}"
    assert SYNC_INDEXES <= first["indexes"]
    assert not GONE_INDEXES & first["indexes"]
    meta = first["meta"]
    assert set(meta) == {"seq", "epoch", "purged_seq", "hlc_ms", "hlc_counter"}
    assert (meta["seq"], meta["purged_seq"], meta["hlc_ms"], meta["hlc_counter"]) == ("0",) * 4
    assert len(meta["epoch"]) == 16 and int(meta["epoch"], 16) >= 0
    apps = {app for app, _ in first["applied"]}
    assert {"auth", "records", "syncing", "push"} <= apps

    asyncio.run(migrate_database(empty_database))
    second = asyncio.run(inspect(empty_database))
    assert second == first, "a second run must apply nothing and seed nothing again"


def test_two_databases_get_different_epochs(tmp_path: Path) -> None:
    epochs = set()
    for name in ("one", "two"):
        config = parse_database_url(f"sqlite:///{tmp_path / name}.sqlite3")
        asyncio.run(migrate_database(config))
        epochs.add(asyncio.run(inspect(config))["meta"]["epoch"])
    assert len(epochs) == 2
