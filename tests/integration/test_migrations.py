"""Migrations, on both engines.

From an empty database every table and index appears, the sync counters are seeded once,
and running them again changes nothing. Each app's migrations touch only its own tables (a
static check of every statement they run). The migrations as they were before (at 2fc962a,
the files that changed since kept in migrations_2fc962a/) give a new database the same
schema as today's, and a database they made migrates with today's code to that same schema.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.conf.apps import AppConfig, AppRegistry

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
GONE_INDEXES |= {"accounts_scope", "accounts_owner_id", "accounts_team_id", "history_record_id"}


def expected_tables() -> set[str]:
    from server.piccolo_conf import APP_REGISTRY
    from server.tables import ALL_TABLES

    names = {table._meta.tablename for table in ALL_TABLES}
    for app in APP_REGISTRY.app_configs.values():
        names |= {table._meta.tablename for table in app.table_classes}
    return names


@pytest.fixture(params=ENGINES)
def empty_databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], DatabaseConfig]]:
    """Makes databases with nothing in them, not even Piccolo's migration table."""
    made: list[str] = []

    def make() -> DatabaseConfig:
        if request.param == "sqlite":
            return parse_database_url(f"sqlite:///{tmp_path / f'empty{uuid.uuid4().hex}.sqlite3'}")
        require_postgres()
        name = f"fieldcrm_empty_{uuid.uuid4().hex[:10]}"
        create_pg_database(name)
        made.append(name)
        return parse_database_url(pg_url(name))

    yield make
    for name in made:
        drop_pg_database(name)


@pytest.fixture
def empty_database(empty_databases: Callable[[], DatabaseConfig]) -> DatabaseConfig:
    """A database with nothing in it, not even Piccolo's migration table."""
    return empty_databases()


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
    assert set(meta) == {"seq", "epoch", "purged_seq", "hlc_ms", "hlc_counter", "commits"}
    assert (meta["seq"], meta["purged_seq"], meta["hlc_ms"], meta["hlc_counter"]) == ("0",) * 4
    assert meta["commits"] == "0"
    assert len(meta["epoch"]) == 16 and int(meta["epoch"], 16) >= 0
    apps = {app for app, _ in first["applied"]}
    assert {"auth", "records", "syncing", "push", "nearby"} <= apps

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


# --- Each app's migrations touch only its own tables -----------------------------------------

# The migrations as they were at 2fc962a, when some acted on other apps' tables, are today's
# files but for these: migrations_2fc962a/ holds the old text of those changed since,
# ADDED_SINCE names the migrations added since and APPS_SINCE the apps. The syncing app
# depended on two others then.
OLD_MIGRATIONS = Path(__file__).with_name("migrations_2fc962a") / "piccolo_migrations"
ADDED_SINCE = {
    "auth": {"auth_2026_11_23t19_40_00_000000"},
    "records": {"records_2026_11_23t19_40_00_000000", "records_2026_11_23t20_10_30_000000"},
    "nearby": {"nearby_2026_11_24t09_00_00_000000"},
}
APPS_SINCE = {"nearby"}
OLD_DEPENDENCIES = {"syncing": ["records", "auth"]}
# (migration, table) for each statement of those that acted on another app's table.
OLD_STRAYS = {
    ("syncing_2026_11_23t19_40_00_000000", "accounts"),  # accounts_lat_lng, accounts_scope_seq
    ("syncing_2026_11_23t19_40_00_000000", "login_attempts"),  # login_attempts_username_at
    ("syncing_2026_11_24t11_00_00_000000", "accounts"),  # DROP INDEX accounts_scope_seq
    ("push_2026_11_23t20_10_30_000000", "tasks"),  # tasks_reminder_due
    ("records_2026_11_24t09_00_00_000000", "geocoding_attempts"),  # the geocoding job's table
}

MIGRATION_FILE = re.compile(r"[a-z]+_\d{4}_\d\d_\d\dt\d\d_\d\d_\d\d_\d{6}")
CREATE_INDEX = re.compile(r"CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?(\w+) ON (\w+)", re.I)
DROP_INDEX = re.compile(r"DROP INDEX (?:IF EXISTS )?(\w+)", re.I)
ON_TABLE = re.compile(
    r"(?:(?:CREATE|DROP|ALTER) (?:VIRTUAL )?TABLE (?:IF (?:NOT )?EXISTS )?|INSERT INTO |UPDATE "
    r"|DELETE FROM |CREATE TRIGGER (?:IF NOT EXISTS )?\w+ (?:BEFORE |AFTER |INSTEAD OF )?"
    r"(?:INSERT|DELETE|UPDATE(?: OF [\w, ]+?)?) ON |SELECT [\w, ]+ FROM )"
    r"(\w+)",
    re.I,
)
# What belongs to no table: extensions and functions, of the whole database, and a
# sequence (the sync seqs' on PostgreSQL), made and set.
DATABASE_WIDE = re.compile(
    r"CREATE (?:EXTENSION|(?:OR REPLACE )?FUNCTION|SEQUENCE) |SELECT setval\(", re.I
)
# A table of an app's own that Piccolo does not know: a record table's search index (FTS5).
SEARCH_TABLE = re.compile(r"(\w+)_search")


def registry() -> AppRegistry:
    from server.piccolo_conf import APP_REGISTRY

    return APP_REGISTRY


def migration_files(app: AppConfig) -> list[Path]:
    folder = Path(app.resolved_migrations_folder_path)
    return sorted(path for path in folder.glob("*.py") if MIGRATION_FILE.fullmatch(path.stem))


@pytest.fixture
def old_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppRegistry:
    """Today's apps with their migrations as at 2fc962a, copied to folders of their own."""

    # Piccolo reads an app's config from the module its registry names.
    def module_name(app: str) -> str:
        return f"_fieldcrm_2fc962a_{app}_piccolo_app"

    names = [name for name in registry().app_configs if name not in APPS_SINCE]
    for name in names:
        app = registry().app_configs[name]
        folder = tmp_path / "2fc962a" / name
        folder.mkdir(parents=True)
        for path in migration_files(app):
            if path.stem not in ADDED_SINCE.get(name, ()):
                shutil.copy(path, folder)
        for path in OLD_MIGRATIONS.glob(f"{name}_*.py"):
            shutil.copy(path, folder)
        module = ModuleType(module_name(name))
        module.APP_CONFIG = AppConfig(  # type: ignore[attr-defined]
            app_name=name,
            migrations_folder_path=str(folder),
            table_classes=app.table_classes,
            migration_dependencies=[module_name(dep) for dep in OLD_DEPENDENCIES.get(name, [])],
        )
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return AppRegistry(apps=[module_name(name) for name in names])


def forget_migration_modules() -> None:
    """Piccolo imports a migration file by its bare name, from the folder it has just put
    first on sys.path: forget those it imported, so that a run imports its own files."""
    for name in [name for name in sys.modules if MIGRATION_FILE.fullmatch(name)]:
        del sys.modules[name]
    importlib.invalidate_caches()


async def migrate_with(config: DatabaseConfig, apps: AppRegistry | None = None) -> None:
    """Migrate with today's migrations, or with those of `apps`."""
    import server.piccolo_conf as conf

    today, path = conf.APP_REGISTRY, list(sys.path)
    forget_migration_modules()
    conf.APP_REGISTRY = apps or today
    try:
        await migrate_database(config)
    finally:
        conf.APP_REGISTRY = today
        sys.path[:] = path
        forget_migration_modules()


async def schema(config: DatabaseConfig) -> dict[str, Any]:
    """Every table with its columns (and constraints, or its SQL), every index with its table
    and definition, and anything else the engine lists (sequences), as the engine has them."""
    db.configure(config)
    await db.start()
    try:
        return await (_postgres_schema() if config.is_postgres else _sqlite_schema())
    finally:
        await db.stop()


def _one_line(sql: str | None) -> str | None:
    return " ".join(sql.split()) if sql else sql


async def _sqlite_schema() -> dict[str, Any]:
    rows = await db.fetch("SELECT type, name, tbl_name, sql FROM sqlite_master")
    tables = {}
    for row in (row for row in rows if row["type"] == "table"):
        columns = await db.fetch(f'PRAGMA table_info("{row["name"]}")')
        tables[row["name"]] = {
            "sql": _one_line(row["sql"]),
            "columns": [
                (c["name"], c["type"], c["notnull"], c["dflt_value"], c["pk"]) for c in columns
            ],
        }
    return {
        "tables": tables,
        "indexes": {
            row["name"]: (row["tbl_name"], _one_line(row["sql"]))
            for row in rows
            if row["type"] == "index"
        },
        "other": {
            (row["type"], row["name"]) for row in rows if row["type"] not in ("table", "index")
        },
    }


async def _postgres_schema() -> dict[str, Any]:
    tables: dict[str, Any] = {
        row["table_name"]: {"type": row["table_type"], "columns": [], "constraints": {}}
        for row in await db.fetch(
            "SELECT table_name, table_type FROM information_schema.tables"
            " WHERE table_schema = 'public'"
        )
    }
    for row in await db.fetch(
        "SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length,"
        " numeric_precision, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ):
        tables[row.pop("table_name")]["columns"].append(tuple(row.values()))
    for row in await db.fetch(
        "SELECT c.conrelid::regclass::text AS table_name, c.conname,"
        " pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
    ):
        tables[row["table_name"]]["constraints"][row["conname"]] = row["definition"]
    indexes = await db.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    )
    sequences = await db.fetch(
        "SELECT sequence_name, data_type FROM information_schema.sequences"
        " WHERE sequence_schema = 'public'"
    )
    return {
        "tables": tables,
        "indexes": {row["indexname"]: (row["tablename"], row["indexdef"]) for row in indexes},
        "other": {("sequence", row["sequence_name"], row["data_type"]) for row in sequences},
    }


async def applied(config: DatabaseConfig) -> set[tuple[str, str]]:
    db.configure(config)
    await db.start()
    try:
        rows = await db.fetch("SELECT app_name, name FROM migration")
        return {(row["app_name"], row["name"]) for row in rows}
    finally:
        await db.stop()


def test_a_new_database_gets_the_schema_the_old_migrations_made(
    empty_databases: Callable[[], DatabaseConfig], old_apps: AppRegistry
) -> None:
    old, new = empty_databases(), empty_databases()
    asyncio.run(migrate_with(old, old_apps))
    asyncio.run(migrate_with(new))
    expected, got = asyncio.run(schema(old)), asyncio.run(schema(new))
    assert got["tables"].keys() == expected["tables"].keys()
    for table, definition in expected["tables"].items():
        assert got["tables"][table] == definition, table
    assert got["indexes"] == expected["indexes"]
    assert got == expected
    # What moved is made as before, and accounts (scope, seq), made and dropped, is not there.
    assert {"accounts_lat_lng", "login_attempts_username_at", "tasks_reminder_due"} <= set(
        got["indexes"]
    )
    assert "accounts_scope_seq" not in got["indexes"]
    assert "geocoding_attempts" in got["tables"]


def test_a_database_the_old_migrations_made_keeps_its_schema(
    empty_databases: Callable[[], DatabaseConfig], old_apps: AppRegistry
) -> None:
    config = empty_databases()
    asyncio.run(migrate_with(config, old_apps))
    before, ran_before = asyncio.run(schema(config)), asyncio.run(applied(config))
    asyncio.run(migrate_with(config))  # raises if a migration fails
    after, ran_after = asyncio.run(schema(config)), asyncio.run(applied(config))
    assert after == before
    folders = {
        name: app.resolved_migrations_folder_path for name, app in registry().app_configs.items()
    }
    added = {
        (app, load(Path(folders[app]) / f"{name}.py").ID)
        for app, names in ADDED_SINCE.items()
        for name in names
    }
    assert ran_after - ran_before == added


def load(path: Path) -> Any:
    """A migration file, as a module of a name of its own (Piccolo's imports are not used)."""
    spec = importlib.util.spec_from_file_location(f"_checked_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StatementRecorder:
    """Stands in for the engine a raw migration step gets from engine_finder()."""

    def __init__(self, engine_type: str) -> None:
        self.engine_type = engine_type
        self.statements: list[str] = []

    async def run_ddl(self, sql: str) -> None:
        self.statements.append(sql)


def run_offline(path: Path) -> tuple[MigrationManager, list[str]]:
    """A migration's manager, and the SQL its raw steps run on either engine, without a
    database."""
    module = load(path)
    statements: list[str] = []
    for engine_type in ("sqlite", "postgres"):
        recorder = StatementRecorder(engine_type)
        module.engine_finder = lambda recorder=recorder: recorder
        manager: MigrationManager = asyncio.run(module.forwards())
        for step in manager.raw:
            result = step()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        statements += [s for s in recorder.statements if s not in statements]
    return manager, statements


def piccolo_tables(manager: MigrationManager) -> set[str]:
    """The tables Piccolo's own operations in a migration act on."""
    names = {table.tablename for table in (*manager.add_tables, *manager.drop_tables)}
    names |= {change.tablename for change in manager.change_table_schemas}
    for rename in manager.rename_tables:
        names |= {rename.old_tablename, rename.new_tablename}
    for operations in (
        manager.add_columns.add_columns,
        manager.drop_columns.drop_columns,
        manager.rename_columns.rename_columns,
        manager.alter_columns.alter_columns,
        manager.add_constraints.add_constraints,
        manager.drop_constraints.drop_constraints,
    ):
        names |= {operation.tablename for operation in operations}
    return names


def strays(apps: AppRegistry) -> set[tuple[str, str]]:
    """(migration, table) for each table a migration acts on that is not of its app.

    A raw statement's table is the one it names; an index dropped by name is on the table the
    statement that made it names, or (Piccolo's own, {table}_{column}) the table it starts
    with. A statement of which the table cannot be told fails the check."""
    ran = {
        (name, path): run_offline(path)
        for name, app in apps.app_configs.items()
        for path in migration_files(app)
    }
    made_on = {
        match[1]: match[2]
        for _, sql in ran.values()
        for statement in sql
        if (match := CREATE_INDEX.search(statement))
    }
    every_table = sorted(
        (table._meta.tablename for app in apps.app_configs.values() for table in app.table_classes),
        key=len,
        reverse=True,  # tasks_archive_at would be of tasks_archive, not of tasks
    )
    found = set()
    for (name, path), (manager, sql) in ran.items():
        assert manager.app_name == name, f"{path.name} says it is of the {manager.app_name} app"
        own = {table._meta.tablename for table in apps.app_configs[name].table_classes}
        touched = piccolo_tables(manager)
        for statement in sql:
            if DATABASE_WIDE.match(statement):
                continue
            if match := DROP_INDEX.search(statement):
                index = match[1]
                table = made_on.get(index) or next(
                    (table for table in every_table if index.startswith(f"{table}_")), None
                )
            else:
                match = CREATE_INDEX.search(statement)
                table = match[2] if match else (m[1] if (m := ON_TABLE.search(statement)) else None)
            assert table, f"{path.name}: on which table is {statement!r}?"
            if (search := SEARCH_TABLE.fullmatch(table)) and search[1] in own:
                table = search[1]
            touched.add(table)
        found |= {(path.stem, table) for table in touched - own}
    return found


def test_each_app_migrates_only_its_own_tables() -> None:
    assert strays(registry()) == set()


def test_the_check_finds_what_the_old_migrations_did_to_other_apps(old_apps: AppRegistry) -> None:
    assert strays(old_apps) == OLD_STRAYS


# --- The search indexes take in the rows already there ---------------------------------------

SEARCH_MIGRATION = "records_2026_12_20t09_00_00_000000"


@pytest.fixture
def apps_before_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppRegistry:
    """Today's apps without the migration that made the search indexes."""

    def module_name(app: str) -> str:
        return f"_fieldcrm_before_search_{app}_piccolo_app"

    names = list(registry().app_configs)
    for name in names:
        app = registry().app_configs[name]
        folder = tmp_path / "before_search" / name
        folder.mkdir(parents=True)
        for path in migration_files(app):
            if path.stem != SEARCH_MIGRATION:
                shutil.copy(path, folder)
        module = ModuleType(module_name(name))
        module.APP_CONFIG = AppConfig(  # type: ignore[attr-defined]
            app_name=name,
            migrations_folder_path=str(folder),
            table_classes=app.table_classes,
            migration_dependencies=[module_name(dep) for dep in app.migration_dependencies],
        )
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return AppRegistry(apps=[module_name(name) for name in names])


async def _rows_before_search(config: DatabaseConfig) -> dict[str, str]:
    ids = {"accounts": str(uuid.uuid4()), "notes": str(uuid.uuid4())}
    db.configure(config)
    await db.start()
    try:
        async with db.write_transaction():
            for table, text_column, text in [
                ("accounts", "name", "Ancienne Épicerie"),
                ("notes", "body", "Rappeler le gérant mardi"),
            ]:
                extra = ", account_id" if table == "notes" else ""
                await db.fetch(
                    f"INSERT INTO {table} (id, created_at, updated_at, seq, scope, deleted,"
                    f" clocks, {text_column}{extra}) VALUES ({{}}, {{}}, {{}}, 1, 'team:x',"
                    f" {{}}, '{{{{}}}}', {{}}{', {}' if extra else ''})",
                    ids[table],
                    datetime.now(UTC),
                    datetime.now(UTC),
                    False,
                    text,
                    *([ids["accounts"]] if extra else []),
                )
    finally:
        await db.stop()
    return ids


async def _search(config: DatabaseConfig, table: str, typed: list[str]) -> list[str]:
    from server.records.search import search_clause

    db.configure(config)
    await db.start()
    try:
        before, before_args, clause, args = search_clause(table, typed)
        rows = await db.fetch(
            f"{before}SELECT id FROM {table} WHERE deleted = {{}}{clause}",
            *before_args,
            False,
            *args,
        )
        return [row["id"] for row in rows]
    finally:
        await db.stop()


def test_the_search_indexes_take_in_the_rows_already_there(
    empty_database: DatabaseConfig, apps_before_search: AppRegistry
) -> None:
    asyncio.run(migrate_with(empty_database, apps_before_search))
    ids = asyncio.run(_rows_before_search(empty_database))
    asyncio.run(migrate_with(empty_database))
    assert asyncio.run(_search(empty_database, "accounts", ["epicerie"])) == [ids["accounts"]]
    assert asyncio.run(_search(empty_database, "notes", ["gerant", "mar"])) == [ids["notes"]]
    assert asyncio.run(_search(empty_database, "notes", ["epicerie"])) == []
