"""DATABASE_URL and the rest of the environment, read into Settings, and only there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.maps.services import tile_attribution
from server.settings import (
    DEFAULT_DATABASE_URL,
    DEFAULT_PWA_DIR,
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
    assert settings.tile_url.startswith("https://data.geopf.fr/")  # docs/map.md, "Streets"
    assert (settings.login_free_failures, settings.login_window_s) == (5, 900)
    assert settings.trusted_proxies == ()


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


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = load_settings({"FIELDCRM_TRUSTED_PROXIES": " 10.0.0.5, 10.1.0.0/16,::1 ,, "})
    assert settings.trusted_proxies == ("10.0.0.5/32", "10.1.0.0/16", "::1/128")
    # A network given by one of its addresses is that network.
    assert load_settings({"FIELDCRM_TRUSTED_PROXIES": "10.1.2.3/16"}).trusted_proxies == (
        "10.1.0.0/16",
    )
    assert load_settings({"FIELDCRM_TRUSTED_PROXIES": ""}).trusted_proxies == ()


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.300", "10.0.0.0/33", "*"])
def test_a_bad_trusted_proxy_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_TRUSTED_PROXIES"):
        load_settings({"FIELDCRM_TRUSTED_PROXIES": f"10.0.0.1,{value}"})


@pytest.mark.parametrize("value", ["soon", "0", "-1", ""])
def test_a_bad_dispatch_interval_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_DISPATCH_INTERVAL_S"):
        load_settings({"FIELDCRM_DISPATCH_INTERVAL_S": value})


def test_load_settings_defaults_of_the_app_the_map_and_the_geocoder() -> None:
    settings = load_settings({})
    assert settings.pwa_dir == DEFAULT_PWA_DIR and (DEFAULT_PWA_DIR / "index.html").is_file()
    assert settings.tile_attribution == "© IGN – Plan IGN v2"
    assert settings.geocoder == {}
    assert settings.database.postgres_data_dir == "./data"


def test_load_settings_reads_the_app_the_map_and_the_geocoder(tmp_path: Path) -> None:
    geocoder = {"FIELDCRM_GEOCODER": "nominatim", "FIELDCRM_GEOCODER_MIN_DELAY_S": "2"}
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://crm@db/crm",
            "FIELDCRM_DATA_DIR": str(tmp_path),
            "FIELDCRM_PWA_DIR": str(tmp_path / "pwa"),
            "FIELDCRM_TILE_ATTRIBUTION": "  © Acme maps  ",
            "FIELDCRM_PUSH_SUBJECT": "mailto:ops@example.com",
            **geocoder,
        }
    )
    assert settings.database.data_dir == tmp_path.resolve()
    assert settings.pwa_dir == tmp_path / "pwa"
    assert settings.tile_attribution == "© Acme maps"
    assert settings.geocoder == geocoder  # geo.geocoders reads them; nothing else is passed
    assert settings.push_subject == "mailto:ops@example.com"
    # An empty FIELDCRM_PWA_DIR is no setting at all.
    assert load_settings({"FIELDCRM_PWA_DIR": ""}).pwa_dir == DEFAULT_PWA_DIR


@pytest.mark.parametrize(
    ("tile_url", "attribution", "expected"),
    [
        ("", "© Acme maps", ""),  # no map tiles, no credit
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "", "© OpenStreetMap contributors"),
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© Acme maps", "© Acme maps"),
        ("https://tiles.example/{z}/{x}/{y}.png", "", ""),
    ],
)
def test_the_map_credit_comes_from_the_settings(
    tile_url: str, attribution: str, expected: str
) -> None:
    settings = load_settings(
        {"FIELDCRM_TILE_URL": tile_url, "FIELDCRM_TILE_ATTRIBUTION": attribution}
    )
    assert tile_attribution(settings) == expected


# Reads of the process's environment (and the one write, for Piccolo) in server/, geo/, sync/.
ENVIRONMENT = re.compile(r"\bos\.(?:environ|getenv|putenv|unsetenv)\b|from os import")
ALLOWED = {
    ("server/settings.py", "env = os.environ if environ is None else environ"),
    ("server/migrate.py", 'os.environ["PICCOLO_CONF"] = "server.piccolo_conf"'),
}


def test_only_load_settings_reads_the_environment() -> None:
    root = Path(__file__).resolve().parents[2]
    found = {
        (path.relative_to(root).as_posix(), line.strip())
        for folder in ("server", "geo", "sync")
        for path in sorted((root / folder).rglob("*.py"))
        for line in path.read_text().splitlines()
        if ENVIRONMENT.search(line)
    }
    assert found == ALLOWED


def test_the_write_limits_default_and_read_the_environment() -> None:
    settings = load_settings({})
    assert (settings.write_rate_per_min, settings.write_burst, settings.team_quota_records) == (
        600,
        2000,
        1_000_000,
    )
    settings = load_settings(
        {
            "FIELDCRM_WRITE_RATE_PER_MIN": "0",
            "FIELDCRM_WRITE_BURST": " 50 ",
            "FIELDCRM_TEAM_QUOTA_RECORDS": "2_000_000",
        }
    )
    assert (settings.write_rate_per_min, settings.write_burst, settings.team_quota_records) == (
        0,
        50,
        2_000_000,
    )


@pytest.mark.parametrize(
    "name", ["FIELDCRM_WRITE_RATE_PER_MIN", "FIELDCRM_WRITE_BURST", "FIELDCRM_TEAM_QUOTA_RECORDS"]
)
@pytest.mark.parametrize("value", ["ten", "-1", "1.5"])
def test_a_bad_limit_is_a_config_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_the_time_zone_of_reports() -> None:
    assert load_settings({}).timezone == "UTC"
    assert load_settings({"FIELDCRM_TIMEZONE": "Europe/Paris"}).timezone == "Europe/Paris"
    assert load_settings({"FIELDCRM_TIMEZONE": " "}).timezone == "UTC"


@pytest.mark.parametrize(
    "value", ["Paris", "Europe", "Europe/Nowhere", "../../etc/passwd", "UTC+2", "x" * 300, "a\x00"]
)
def test_a_bad_time_zone_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_TIMEZONE"):
        load_settings({"FIELDCRM_TIMEZONE": value})


def test_the_read_replica_is_read_from_database_replica_url() -> None:
    primary = "postgresql://fieldcrm@db1:5432/crm"
    settings = load_settings({"DATABASE_URL": primary})
    assert settings.database_replica is None
    settings = load_settings(
        {
            "DATABASE_URL": primary,
            "DATABASE_REPLICA_URL": "postgresql://reader@db2:5433/crm",
            "FIELDCRM_REPLICA_MAX_LAG_S": "2.5",
        }  # fmt: skip
    )
    assert settings.database_replica == DatabaseConfig(
        engine="postgres", host="db2", port=5433, user="reader", database="crm"
    )
    assert settings.replica_max_lag_s == 2.5


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DATABASE_REPLICA_URL": "postgresql://db2/crm"}, "needs a PostgreSQL DATABASE_URL"),
        (
            {"DATABASE_URL": "postgresql://db1/crm", "DATABASE_REPLICA_URL": "sqlite:///x"},
            "must start with postgresql://",
        ),
        (
            {"DATABASE_URL": "postgresql://db1/crm", "DATABASE_REPLICA_URL": "postgresql://db2"},
            "DATABASE_REPLICA_URL for PostgreSQL needs a database name",
        ),
        ({"FIELDCRM_REPLICA_MAX_LAG_S": "0"}, "FIELDCRM_REPLICA_MAX_LAG_S"),
        ({"FIELDCRM_REPLICA_MAX_LAG_S": "soon"}, "FIELDCRM_REPLICA_MAX_LAG_S"),
    ],
)
def test_a_bad_replica_setting_is_a_config_error(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(env)


def test_history_retention_is_forever_unless_set_to_whole_days() -> None:
    """FIELDCRM_HISTORY_RETENTION_DAYS (docs/privacy.md): unset, empty or 0 keeps history
    and conflict values forever; anything but a whole number of days stops the start."""
    assert load_settings({}).history_retention_days == 0
    days = load_settings({"FIELDCRM_HISTORY_RETENTION_DAYS": " 3_650 "}).history_retention_days
    assert days == 3650
    for bad in ("a year", "-1", "1.5", "100001"):
        with pytest.raises(ConfigError, match="FIELDCRM_HISTORY_RETENTION_DAYS"):
            load_settings({"FIELDCRM_HISTORY_RETENTION_DAYS": bad})


def test_the_pool_sizes_come_from_the_environment() -> None:
    database = load_settings({}).database
    assert (database.pool_min, database.pool_max) == (20, 20)
    database = load_settings({"FIELDCRM_DB_POOL_MIN": "4", "FIELDCRM_DB_POOL_MAX": "8"}).database
    assert (database.pool_min, database.pool_max) == (4, 8)
    database = load_settings({"FIELDCRM_DB_POOL_MIN": "40"}).database  # the maximum follows
    assert (database.pool_min, database.pool_max) == (40, 40)


@pytest.mark.parametrize(
    "environ",
    [
        {"FIELDCRM_DB_POOL_MIN": "many"},
        {"FIELDCRM_DB_POOL_MIN": "0"},
        {"FIELDCRM_DB_POOL_MAX": "5000"},
        {"FIELDCRM_DB_POOL_MIN": "9", "FIELDCRM_DB_POOL_MAX": "3"},
    ],
)
def test_a_bad_pool_size_is_a_config_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="FIELDCRM_DB_POOL"):
        load_settings(environ)
