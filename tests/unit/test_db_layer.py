"""The database layer's edges (server/db/): importing it changes nothing outside it and
imports nothing of the server's but the settings; configuring SQLite is what sets how
sqlite3 reads our column types; the caller binds the tables. Each check runs in a fresh
interpreter, since this one has long imported everything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_importing_the_layer_changes_nothing_outside_it() -> None:
    run("""
        import sqlite3
        import sys

        import piccolo.engine.sqlite  # Piccolo registers its own converters on import

        before = dict(sqlite3.converters)
        from server import db

        assert dict(sqlite3.converters) == before
        above = sorted(
            name for name in sys.modules
            if name.startswith("server.")
            and not name.startswith("server.db")
            and name != "server.settings"
        )
        assert not above, above
        assert callable(db.fetch) and isinstance(db.ON_CONFIGURE, list)
    """)


def test_configuring_sqlite_sets_how_columns_are_read() -> None:
    run("""
        import sqlite3
        from datetime import UTC, datetime

        from server import db
        from server.settings import parse_database_url

        db.configure(parse_database_url("postgresql://crm@localhost/never_opened"))
        uuid_converter = sqlite3.converters["UUID"]
        db.configure(parse_database_url("sqlite:////nonexistent/never-opened.sqlite3"))
        assert sqlite3.converters["UUID"] is not uuid_converter

        conn = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES)
        conn.execute("CREATE TABLE t (id UUID, n INTEGER, ok BOOLEAN, at TIMESTAMPTZ)")
        conn.execute(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            ("5b6f1a3e-0c1d-4e2f-9a8b-7c6d5e4f3a2b", 7, True, "2026-01-02 03:04:05.000006"),
        )
        assert conn.execute("SELECT * FROM t").fetchone() == (
            "5b6f1a3e-0c1d-4e2f-9a8b-7c6d5e4f3a2b",
            7,
            True,
            datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        )
    """)


def test_the_caller_binds_the_tables_to_the_configured_engine() -> None:
    run("""
        from server import db
        from server.settings import parse_database_url
        from server.tables import ALL_TABLES, bind_tables

        engine = db.configure(parse_database_url("sqlite:////nonexistent/never-opened.sqlite3"))
        assert engine is db.engine()
        assert all(table._meta._db is not engine for table in ALL_TABLES)
        bind_tables(engine)
        assert all(table._meta.db is engine for table in ALL_TABLES)
    """)
