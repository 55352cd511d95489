"""Test set-up: the database engine is chosen per test (SQLite and PostgreSQL) before the
app is built; PostgreSQL tests use a database of their own, made and dropped here."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server.auth import passwords
from server.auth.passwords import Cost
from server.settings import DatabaseConfig, Settings, parse_database_url

PG_HOST = os.environ.get("FIELDCRM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FIELDCRM_TEST_PG_PORT", "5432"))
# Servers a test starts as processes (`fieldcrm serve`, the CLI) open 2 connections, not
# the production default of 20 each: `make test` runs in several processes against one
# PostgreSQL (max_connections 100), and a pool still grows to its maximum when it must.
os.environ.setdefault("FIELDCRM_DB_POOL_MIN", "2")
PG_USER = os.environ.get("FIELDCRM_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ENGINES = ["sqlite", "postgres"]

TRUNCATED = [
    "teams", "users", "auth_tokens", "login_attempts", "accounts", "contacts", "visits",
    "notes", "tasks", "deals", "conflicts", "sync_changes", "sync_clients", "sync_results",
    "push_subscriptions", "push_deliveries", "geocoding_attempts", "rejections", "scope_moves",
    "calendar_feeds",
    "team_moves", "write_budgets", "scope_usage",
    "imports", "import_items", "history", "org_settings", "campaigns", "campaign_accounts",
    "attachments", "attachment_blobs",
    "erasures", "erased_records", "history_cuts",
    "merged_records", "merges", "merge_items",
]  # fmt: skip


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if postgres_reachable():
        return
    message = f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}"
    if IN_CI:
        pytest.fail(message + " (CI must run both engines)")
    pytest.skip(message + "; start it to run the PostgreSQL half of the suite")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database(name: str) -> None:
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))


def drop_pg_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pg_url(name: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def migrate_database(config: DatabaseConfig) -> None:
    from server import db
    from server.migrate import migrate
    from server.tables import bind_tables

    bind_tables(db.configure(config))
    await db.start()
    try:
        await migrate()
    finally:
        await db.stop()


@dataclass
class Database:
    """A migrated database for one test run: a file copy (SQLite) or a shared one (PG)."""

    engine: str
    config: DatabaseConfig

    @property
    def url(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{self.config.path}"
        return pg_url(self.config.database)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "fieldcrm.sqlite3"
    asyncio.run(migrate_database(parse_database_url(f"sqlite:///{path}")))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    require_postgres()
    name = f"fieldcrm_test_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    asyncio.run(migrate_database(parse_database_url(pg_url(name))))
    yield name
    drop_pg_database(name)


async def truncate_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=name)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TRUNCATED)}")
        # Back to what a fresh migration leaves: a new identity and no clock seen, so a
        # test never inherits the clock a previous test pushed ahead (it decided merges).
        await conn.execute(
            "UPDATE sync_meta SET version = 0, value = CASE key WHEN 'epoch' THEN $1 ELSE '0' END",
            secrets.token_hex(8),
        )
    finally:
        await conn.close()


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A clean, migrated database on each engine."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "fieldcrm.sqlite3"
        shutil.copyfile(template, path)
        return Database("sqlite", parse_database_url(f"sqlite:///{path}"))
    name = request.getfixturevalue("pg_database")
    asyncio.run(truncate_pg(name))
    # Many test processes share one PostgreSQL server: a small warm pool each.
    config = msgspec.structs.replace(parse_database_url(pg_url(name)), pool_min=2)
    return Database("postgres", config)


@pytest.fixture
async def started_db(database: Database) -> AsyncIterator[Database]:
    """`database` as the process's engine (server.db), started, for tests that use the
    engine itself rather than the app."""
    from server import db
    from server.tables import bind_tables

    bind_tables(db.configure(database.config))
    await db.start()
    yield database
    await db.stop()


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(
        database=database.config,
        login_free_failures=5,
        login_window_s=300,
        blob_url=f"file://{tmp_path / 'blobs'}",
    )


# scrypt at the production cost takes about 0.4 s per hash: tests that make users by the hundred
# hash at this one instead. Tests of the cost itself ask for `production_password_cost`.
TEST_PASSWORD_COST = Cost(n=2**10, r=8, p=1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "COST", TEST_PASSWORD_COST)


@pytest.fixture
def production_password_cost(monkeypatch: pytest.MonkeyPatch) -> Cost:
    monkeypatch.setattr(passwords, "COST", passwords.OWASP_MINIMUM)
    return passwords.OWASP_MINIMUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Any]:
    """The real app behind real HTTP (uvicorn on a free port), in the test's event loop so
    the test can use the same database engine for its set-up."""
    import httpx
    import uvicorn

    from server.app import create_app

    app = create_app(settings, run_migrations=False)
    port = free_port()
    # As `fieldcrm serve` runs it: the app, not uvicorn, decides whose X-Forwarded-For to believe.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        yield http
    server.should_exit = True
    await task
