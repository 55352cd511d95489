"""DATABASE_URL and the rest of the environment, read into Settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    DatabaseConfig,
    load_settings,
    parse_database_url,
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./fieldcrm.sqlite3", "./fieldcrm.sqlite3"),
        ("sqlite:///relative/dir/crm.db", "relative/dir/crm.db"),
        ("sqlite:////var/lib/fieldcrm/crm.sqlite3", "/var/lib/fieldcrm/crm.sqlite3"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    config = parse_database_url(url)
    assert config == DatabaseConfig(engine="sqlite", path=path)
    assert not config.is_postgres


def test_sqlite_data_dir_is_beside_the_file(tmp_path: Path) -> None:
    config = parse_database_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    assert config.data_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://crm@db.internal:6543/fieldcrm",
            {
                "host": "db.internal",
                "port": 6543,
                "user": "crm",
                "password": None,
                "database": "fieldcrm",
            },
        ),
        (
            "postgres://postgres@127.0.0.1/crm",
            {
                "host": "127.0.0.1",
                "port": 5432,
                "user": "postgres",
                "password": None,
                "database": "crm",
            },
        ),
        (
            "postgresql://app:s%40cret%2Fpw@localhost:5432/crm",
            {
                "host": "localhost",
                "port": 5432,
                "user": "app",
                "password": "s@cret/pw",
                "database": "crm",
            },
        ),
        (
            "postgresql://localhost/crm",
            {
                "host": "localhost",
                "port": 5432,
                "user": "postgres",
                "password": None,
                "database": "crm",
            },
        ),
        (
            "postgresql:///crm",
            {
                "host": "127.0.0.1",
                "port": 5432,
                "user": "postgres",
                "password": None,
                "database": "crm",
            },
        ),
    ],
)
def test_postgres_urls(url: str, expected: dict[str, object]) -> None:
    config = parse_database_url(url)
    assert config.engine == "postgres" and config.is_postgres
    assert {key: getattr(config, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///", "needs a file path"),
        ("postgresql://crm@localhost:5432/", "needs a database name"),
        ("postgresql://crm@localhost", "needs a database name"),
        ("mysql://root@localhost/crm", "must start with sqlite:/// or postgresql://"),
        ("", "must start with"),
        ("fieldcrm.sqlite3", "must start with"),
        ("sqlite://relative.db", "must start with"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_database_url(url)


def test_a_bad_port_is_a_config_error() -> None:
    with pytest.raises((ConfigError, ValueError)):
        parse_database_url("postgresql://crm@localhost:notaport/crm")


def test_load_settings_defaults() -> None:
    settings = load_settings({})
    assert settings.database == parse_database_url(DEFAULT_DATABASE_URL)
    assert settings.dispatch_interval_s == 5.0
    assert settings.push_allowed_hosts is None
    assert settings.tile_url == ""
    assert settings.login_max_failures == 5


def test_load_settings_reads_the_environment() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://crm@db:5433/crm",
            "FIELDCRM_DISPATCH_INTERVAL_S": "0.5",
            "FIELDCRM_PUSH_ALLOWED_HOSTS": "push.example.com",
            "FIELDCRM_TILE_URL": "https://tile.example/{z}/{x}/{y}.png",
        }
    )
    assert (settings.database.host, settings.database.port) == ("db", 5433)
    assert settings.dispatch_interval_s == 0.5
    assert settings.push_allowed_hosts == "push.example.com"
    assert settings.tile_url.startswith("https://tile.example/")


@pytest.mark.parametrize("value", ["soon", "0", "-1", ""])
def test_a_bad_dispatch_interval_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_DISPATCH_INTERVAL_S"):
        load_settings({"FIELDCRM_DISPATCH_INTERVAL_S": value})
