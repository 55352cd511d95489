"""`python -m server.cli` as an operator runs it: a subprocess with DATABASE_URL pointing at
a fresh SQLite file or a PostgreSQL database made (and dropped) here."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server import db
from server.auth.passwords import verify_password
from server.settings import parse_database_url
from server.tables import bind_tables
from tests.conftest import ENGINES, create_pg_database, drop_pg_database, pg_url, require_postgres

ROOT = Path(__file__).resolve().parents[2]


def fieldcrm(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.sqlite3'}"
        return
    require_postgres()
    name = f"fieldcrm_cli_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)


def query(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        bind_tables(db.configure(parse_database_url(database_url)))
        await db.start()
        try:
            return await db.fetch(sql, *args)
        finally:
            await db.stop()

    return asyncio.run(run())


def test_migrate_exits_0_on_an_empty_database_and_again(database_url: str) -> None:
    for _ in range(2):
        result = fieldcrm(database_url, "migrate")
        assert result.returncode == 0, result.stderr
        assert "migrations applied" in result.stdout
    assert query(database_url, "SELECT COUNT(*) AS n FROM sync_meta")[0]["n"] == 6


def test_user_add_twice_fails_the_second_time_with_a_clear_message(database_url: str) -> None:
    add = (
        "user",
        "add",
        "ada",
        "--password",
        "secret-pw-1",
        "--role",
        "manager",
        "--team",
        "north",
    )
    first = fieldcrm(database_url, *add)
    assert first.returncode == 0, first.stderr
    assert "ada" in first.stdout and "north" in first.stdout and "new team" in first.stdout

    second = fieldcrm(database_url, *add)
    assert second.returncode != 0
    assert "'ada' exists already" in second.stderr
    assert "Traceback" not in second.stderr

    rows = query(database_url, "SELECT username, role, password_hash FROM users")
    assert [(r["username"], r["role"]) for r in rows] == [("ada", "manager")]
    assert rows[0]["password_hash"].startswith("scrypt$")

    teammate = fieldcrm(
        database_url,
        "user",
        "add",
        "bob",
        "--password",
        "secret-pw-2",
        "--role",
        "rep",
        "--team",
        "north",
    )
    assert teammate.returncode == 0, teammate.stderr
    assert "new team" not in teammate.stdout
    assert query(database_url, "SELECT COUNT(*) AS n FROM teams")[0]["n"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("user", "add", "ada", "--password", "short", "--role", "rep", "--team", "t"),
            "at least 8 characters",
        ),
        (
            ("user", "add", "ada", "--password", "secret-pw-1", "--role", "boss", "--team", "t"),
            "invalid choice",
        ),
        (("user", "add", "ada", "--role", "rep", "--team", "t"), "--password"),
        (("nonsense",), "invalid choice"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_message(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = fieldcrm(f"sqlite:///{tmp_path / 'cli.sqlite3'}", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_database_url_exits_2_with_a_message() -> None:
    result = fieldcrm("mysql://root@localhost/crm", "migrate")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_two_migrations_at_once_on_postgres_both_succeed() -> None:
    require_postgres()
    name = f"fieldcrm_cli_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    try:
        env = {**os.environ, "DATABASE_URL": pg_url(name)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "server.cli", "migrate"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], errors
        meta = query(pg_url(name), "SELECT key FROM sync_meta")
        assert len(meta) == 6
    finally:
        drop_pg_database(name)


def user_row(database_url: str, username: str) -> dict[str, Any]:
    rows = query(
        database_url,
        "SELECT u.role, u.active, u.scope_version, u.password_hash, t.name AS team FROM users u"
        " JOIN teams t ON t.id = u.team_id WHERE u.username = {}",
        username,
    )
    return rows[0]


def live_tokens(database_url: str) -> int:
    rows = query(database_url, "SELECT COUNT(*) AS n FROM auth_tokens WHERE revoked_at IS NULL")
    return int(rows[0]["n"])


def give_token(database_url: str, username: str) -> None:
    query(
        database_url,
        "INSERT INTO auth_tokens (id, token_hash, user_id, created_at, expires_at, revoked_at)"
        " SELECT {}, {}, id, {}, {}, NULL FROM users WHERE username = {}",
        str(uuid.uuid4()),
        uuid.uuid4().hex,
        datetime.now(UTC),
        datetime.now(UTC) + timedelta(days=1),
        username,
    )


def test_user_set_changes_each_value(database_url: str) -> None:
    add = ("user", "add", "ada", "--password", "secret-pw-1", "--role", "rep", "--team", "north")
    assert fieldcrm(database_url, *add).returncode == 0
    give_token(database_url, "ada")

    result = fieldcrm(database_url, "user", "set", "ada", "--role", "manager")
    assert result.returncode == 0, result.stderr
    assert "user ada changed: role manager, team north, active" in result.stdout
    row = user_row(database_url, "ada")
    # A manager also sees the team's refused writes (review scopes): a reset, sessions kept.
    assert (row["role"], row["team"], row["scope_version"]) == ("manager", "north", 1)
    assert live_tokens(database_url) == 1  # a new role keeps the sessions

    result = fieldcrm(database_url, "user", "set", "ada", "--team", "south")
    assert result.returncode == 0, result.stderr
    assert "team south (new team)" in result.stdout and "reset at their next sync" in result.stdout
    row = user_row(database_url, "ada")
    assert (row["team"], row["scope_version"]) == ("south", 2)

    old_hash = row["password_hash"]
    result = fieldcrm(database_url, "user", "set", "ada", "--password", "another-pw-2")
    assert result.returncode == 0, result.stderr
    assert "password set" in result.stdout and "1 token(s) revoked" in result.stdout
    new_hash = user_row(database_url, "ada")["password_hash"]
    assert new_hash != old_hash and verify_password("another-pw-2", new_hash)
    assert live_tokens(database_url) == 0

    give_token(database_url, "ada")
    result = fieldcrm(database_url, "user", "set", "ada", "--active", "no")
    assert result.returncode == 0, result.stderr
    assert "inactive" in result.stdout and "1 token(s) revoked" in result.stdout
    assert user_row(database_url, "ada")["active"] is False
    assert live_tokens(database_url) == 0

    result = fieldcrm(database_url, "user", "set", "ada", "--active", "yes", "--role", "rep")
    assert result.returncode == 0, result.stderr
    row = user_row(database_url, "ada")
    assert (row["active"], row["role"], row["team"], row["scope_version"]) == (
        True,
        "rep",
        "south",
        3,
    )


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("user", "set", "nobody", "--role", "rep"), 1, "there is no user named 'nobody'"),
        (("user", "set", "ada", "--role", "boss"), 2, "invalid choice"),
        (("user", "set", "ada", "--active", "maybe"), 2, "invalid choice"),
        (("user", "set", "ada", "--password", "short"), 1, "at least 8 characters"),
        (("user", "set", "ada", "--team", "x" * 101), 1, "team must be 1 to 100 characters"),
        (("user", "set", "ada"), 2, "nothing to change"),
        (("user", "set"), 2, "username"),
    ],
)
def test_user_set_refuses_unknown_users_and_bad_values(
    tmp_path: Path, args: tuple[str, ...], status: int, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    add = ("user", "add", "ada", "--password", "secret-pw-1", "--role", "rep", "--team", "north")
    assert fieldcrm(url, *add).returncode == 0
    before = user_row(url, "ada")
    result = fieldcrm(url, *args)
    assert result.returncode == status, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert user_row(url, "ada") == before


def test_import_from_the_command_line(database_url: str, tmp_path: Path) -> None:
    assert fieldcrm(database_url, "user", "add", "boss", "--password", "pw-123456",
                    "--role", "admin", "--team", "hq").returncode == 0  # fmt: skip
    assert fieldcrm(database_url, "user", "add", "zoe", "--password", "pw-123456",
                    "--role", "rep", "--team", "north").returncode == 0  # fmt: skip
    sheet = tmp_path / "clients.csv"
    sheet.write_bytes(
        "Société;Ville;Latitude\nÉlectricité Laurent;Lyon;95\nFleurs;Lyon;\n".encode("cp1252")
    )
    dry = fieldcrm(database_url, "import", "accounts", str(sheet), "--dry-run", "--team", "north")
    assert dry.returncode == 0, dry.stderr
    assert "2 rows: would create 1" in dry.stdout and "row 2, Latitude" in dry.stdout
    assert query(database_url, "SELECT id FROM accounts") == []
    real = fieldcrm(database_url, "import", "accounts", str(sheet), "--team", "north")
    assert real.returncode == 0 and "created 1" in real.stdout, real.stdout + real.stderr
    rows = query(database_url, "SELECT a.name, t.name AS team FROM accounts a JOIN teams t"
                 " ON t.id = a.team_id")  # fmt: skip
    assert rows == [{"name": "Fleurs", "team": "north"}]
    refused = fieldcrm(database_url, "import", "accounts", str(sheet), "--as", "zoe")
    assert refused.returncode == 1 and "only managers and admins" in refused.stderr
    missing = fieldcrm(database_url, "import", "accounts", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_verify_history_reports_entries_changed_or_removed_by_hand(database_url: str) -> None:
    assert fieldcrm(database_url, "demo").returncode == 0
    intact = fieldcrm(database_url, "verify-history")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.strip() == "history intact"
    # An account with a few entries: edit its second, remove its third (when it has one).
    [chosen] = query(
        database_url,
        "SELECT record_id FROM history WHERE record_table = 'accounts'"
        " GROUP BY record_id ORDER BY COUNT(*) DESC, record_id LIMIT 1",
    )
    account = str(chosen["record_id"])
    seqs = [
        int(r["seq"])
        for r in query(
            database_url, "SELECT seq FROM history WHERE record_id = {} ORDER BY seq", account
        )
    ]
    assert len(seqs) >= 2  # the demo's visits set their accounts' last visit
    query(
        database_url, "UPDATE history SET user_id = NULL, source = 'rest' WHERE seq = {}", seqs[0]
    )
    query(database_url, "DELETE FROM history WHERE seq = {}", seqs[-1])
    tampered = fieldcrm(database_url, "verify-history")
    assert tampered.returncode == 1
    assert tampered.stdout.splitlines() == [
        f"accounts {account} seq {seqs[0]}: entry changed",
        f"accounts {account}: newest entries removed",
    ]
    assert "2 problems in the history" in tampered.stderr
    assert "Traceback" not in tampered.stderr
