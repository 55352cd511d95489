"""Configuration, read once from the environment at start.

`load_settings` is the one place that reads the environment: everything else gets what it
needs from the Settings it makes (README.md, "Configuration", lists the variables).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

DEFAULT_DATABASE_URL = "sqlite:///./fieldcrm.sqlite3"
DEFAULT_BLOB_URL = "file://./fieldcrm-blobs"
DEFAULT_PWA_DIR = Path(__file__).resolve().parent.parent / "pwa"
# Every variable geo.geocoders reads (docs/geo.md) starts with this.
GEOCODER_PREFIX = "FIELDCRM_GEOCODER"
# The limits' defaults (docs/limits.md): a rep writes a few hundred changes on a busy day;
# a phone back after a week offline sends its outbox in one burst.
DEFAULT_WRITE_RATE_PER_MIN = 600
DEFAULT_WRITE_BURST = 2000
DEFAULT_TEAM_QUOTA_RECORDS = 1_000_000
# The map's streets when FIELDCRM_TILE_URL is not set (docs/map.md, "Streets"): Plan IGN v2
# from France's Géoplateforme, open data (Licence Ouverte 2.0) served without a key, that
# apps may use and keep; detailed in France, the world at small scales. OpenStreetMap's own
# tile servers forbid heavy use by apps, so they are never the default.
DEFAULT_TILE_URL = (
    "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&STYLE=normal&TILEMATRIXSET=PM&FORMAT=image/png"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
)
DEFAULT_TILE_ATTRIBUTION = "© IGN – Plan IGN v2"


# All open from the start: a burst (50 phones polling at once, each request's token looked
# up) then waits at most for a free connection, never for a new one (5-10 ms each).
DEFAULT_POOL_MIN = 20
DEFAULT_POOL_MAX = 20


class DatabaseConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the data lives: an embedded SQLite file or a PostgreSQL server."""

    engine: str  # "sqlite" | "postgres"
    path: str = ""  # SQLite file
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str | None = None
    database: str = ""
    postgres_data_dir: str = "./data"  # FIELDCRM_DATA_DIR
    # FIELDCRM_DB_POOL_MIN / FIELDCRM_DB_POOL_MAX: PostgreSQL connections each process keeps
    # open from the start (warm: a burst does not wait for new ones) and at most.
    pool_min: int = DEFAULT_POOL_MIN
    pool_max: int = DEFAULT_POOL_MAX

    @property
    def is_postgres(self) -> bool:
        return self.engine == "postgres"

    @property
    def data_dir(self) -> Path:
        """Where files kept beside the data go (none is, now that the VAPID key is in the
        database: see push_keys)."""
        if self.engine == "sqlite":
            return Path(self.path).resolve().parent
        return Path(self.postgres_data_dir).resolve()


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseConfig
    push_allowed_hosts: str | None = None
    dispatch_interval_s: float = 5.0
    token_ttl_s: int = 30 * 24 * 3600
    # FIELDCRM_TILE_URL: the map's street tiles, a Leaflet URL template ("" or "none": no
    # tiles, the offline basemap only). Settings made in code have none; load_settings gives
    # DEFAULT_TILE_URL when the variable is not set.
    tile_url: str = ""
    tile_attribution: str = ""  # the map's credit; "" is OpenStreetMap's for its own tiles
    # FIELDCRM_TILE_PACK: an MBTiles file of raster tiles (a territory's streets) served at
    # /api/tiles/{z}/{x}/{y} for phones to keep offline (docs/map.md).
    tile_pack: Path | None = None
    push_subject: str = "mailto:admin@fieldcrm.invalid"
    # Login throttling (server/auth/throttle.py, docs/security.md): per (username, address),
    # failures within the window count; past the free ones each doubles the wait before the
    # next check, from 1 s up to the cap. Waits up to login_sleep_max_s are slept through;
    # longer ones answer 429 with Retry-After.
    login_window_s: int = 900
    login_free_failures: int = 5
    login_delay_cap_s: float = 60.0
    login_sleep_max_s: float = 4.0
    # FIELDCRM_TRUSTED_PROXIES: the reverse proxies (addresses or CIDR networks, normalised)
    # whose X-Forwarded-For is believed; nobody else's is.
    trusted_proxies: tuple[str, ...] = ()
    pwa_dir: Path = DEFAULT_PWA_DIR  # the app served at /
    # Limits (server/core/limits.py, docs/limits.md): each user's writes (sync mutations
    # and REST writes) refill at write_rate_per_min, up to write_burst at once; a team
    # holds at most team_quota_records live records. 0 turns a limit off.
    write_rate_per_min: int = DEFAULT_WRITE_RATE_PER_MIN
    write_burst: int = DEFAULT_WRITE_BURST
    team_quota_records: int = DEFAULT_TEAM_QUOTA_RECORDS
    # The FIELDCRM_GEOCODER* variables as set. geo.geocoders reads and checks them when the
    # geocoding job starts (a bad one turns geocoding off; the API still serves).
    geocoder: dict[str, str] = msgspec.field(default_factory=dict)
    # FIELDCRM_ROW_CACHE_MB: the memory the cache of rows as clients see them may take
    # (server/core/rows.py, WIRE_ROWS), in MiB of its own estimate.
    row_cache_bytes: int = 128 * 2**20
    # FIELDCRM_TIMEZONE: the organisation's IANA time zone, whose calendar days the team
    # reports count in (SPEC section 7).
    timezone: str = "UTC"
    # FIELDCRM_DEFAULT_REGION: the organisation's country (ISO 3166 alpha-2), for phone
    # numbers written without a country code on accounts that name no country.
    default_region: str | None = None
    # FIELDCRM_BLOB_URL: where attachments' bytes are kept (server/blobs.py):
    # `file://PATH` (a folder; relative to where the server starts) or `s3://BUCKET/PREFIX`.
    blob_url: str = DEFAULT_BLOB_URL
    # FIELDCRM_HISTORY_RETENTION_DAYS: how long history entries and conflicts (and the
    # values they hold) are kept; 0, the default, keeps them forever (docs/privacy.md).
    history_retention_days: int = 0
    # DATABASE_REPLICA_URL: a streaming replica of the PostgreSQL primary, which answers
    # pulls that carry no mutations once it has replayed what the client has seen
    # (server/db/replica.py, docs/deployment.md "Read replica"). None: every read goes to
    # the primary.
    database_replica: DatabaseConfig | None = None
    # FIELDCRM_REPLICA_MAX_LAG_S: past this many seconds behind the primary, the replica
    # answers no pull at all (every client gets the primary's newest changes instead).
    replica_max_lag_s: float = 10.0


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says which and why."""


def parse_database_url(url: str) -> DatabaseConfig:
    """Turn `sqlite:///PATH` or `postgresql://USER@HOST:PORT/DB` into a DatabaseConfig."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise ConfigError("DATABASE_URL sqlite:/// needs a file path")
        return DatabaseConfig(engine="sqlite", path=path)
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        database = parts.path.lstrip("/")
        if not database:
            raise ConfigError("DATABASE_URL for PostgreSQL needs a database name")
        return DatabaseConfig(
            engine="postgres",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username) if parts.username else "postgres",
            password=unquote(parts.password) if parts.password else None,
            database=database,
        )
    raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {url!r}")


def parse_replica_url(url: str, primary: DatabaseConfig) -> DatabaseConfig | None:
    """DATABASE_REPLICA_URL: a `postgresql://` URL of a streaming replica of the primary
    (which must be PostgreSQL too); empty: none."""
    url = url.strip()
    if not url:
        return None
    if not primary.is_postgres:
        raise ConfigError(
            "DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL: a replica streams from a"
            " PostgreSQL primary"
        )
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"DATABASE_REPLICA_URL must start with postgresql://, not {url[:60]!r}")
    try:
        return parse_database_url(url)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("DATABASE_URL", "DATABASE_REPLICA_URL")) from None


def parse_replica_max_lag(value: str) -> float:
    """FIELDCRM_REPLICA_MAX_LAG_S: seconds, more than 0 (default 10)."""
    text = value.strip() or "10"
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError("FIELDCRM_REPLICA_MAX_LAG_S must be a number of seconds") from None
    if not 0 < seconds <= 86_400:
        raise ConfigError("FIELDCRM_REPLICA_MAX_LAG_S must be more than 0 and at most 86400")
    return seconds


def parse_trusted_proxies(value: str) -> tuple[str, ...]:
    """`10.0.0.5, 10.1.0.0/16, ::1` -> its networks as strings ("10.0.0.5/32", ...): the
    reverse proxies whose X-Forwarded-For is believed. Empty: none is."""
    networks = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(
                f"FIELDCRM_TRUSTED_PROXIES: {part!r} is not an IP address or a CIDR network"
                " (give them comma-separated, e.g. 10.0.0.5,10.1.0.0/16)"
            ) from None
    return tuple(networks)


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number >= 0 from the environment (0: the limit is off)."""
    text = env.get(name, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (0 turns the limit off)") from None
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more (0 turns the limit off)")
    return value


def parse_pool_sizes(env: Mapping[str, str]) -> tuple[int, int]:
    """FIELDCRM_DB_POOL_MIN and FIELDCRM_DB_POOL_MAX: 1 <= min <= max <= 1000."""
    sizes = []
    defaults = (
        ("FIELDCRM_DB_POOL_MIN", DEFAULT_POOL_MIN),
        ("FIELDCRM_DB_POOL_MAX", DEFAULT_POOL_MAX),
    )
    for name, default in defaults:
        text = env.get(name, "").strip()
        try:
            sizes.append(int(text) if text else default)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number of connections") from None
    low, high = sizes
    if not 1 <= low <= 1000 or not 1 <= high <= 1000:
        raise ConfigError("FIELDCRM_DB_POOL_MIN and _MAX must be from 1 to 1000")
    if not env.get("FIELDCRM_DB_POOL_MAX", "").strip():
        high = max(high, low)  # only the minimum given: the maximum follows it
    if low > high:
        raise ConfigError("FIELDCRM_DB_POOL_MIN must not be above FIELDCRM_DB_POOL_MAX")
    return low, high


def parse_timezone(value: str) -> str:
    """An IANA time zone name the system knows (`Europe/Paris`), as given."""
    name = value.strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):
        raise ConfigError(
            f"FIELDCRM_TIMEZONE: {name[:60]!r} is not an IANA time zone (e.g. Europe/Paris, UTC)"
        ) from None
    return name


def parse_default_region(value: str) -> str | None:
    """`FR`, `fr` -> "FR"; empty -> None (numbers without a country code stay unread)."""
    value = value.strip().upper()
    if not value:
        return None
    import phonenumbers

    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"FIELDCRM_DEFAULT_REGION: {value[:10]!r} is not a country code; give the ISO 3166"
            " alpha-2 code of the organisation's country, e.g. FR"
        )
    return value


def parse_blob_url(value: str) -> str:
    """`file://PATH` or `s3://BUCKET[/PREFIX]`, as given (checked, not opened)."""
    url = value.strip() or DEFAULT_BLOB_URL
    scheme, _, rest = url.partition("://")
    if scheme == "file" and rest:
        return url
    if scheme == "s3" and rest.split("/", 1)[0]:
        return url
    raise ConfigError(
        f"FIELDCRM_BLOB_URL: {url[:100]!r} is neither file://PATH (a folder) nor s3://BUCKET/PREFIX"
    )


def parse_retention_days(value: str) -> int:
    """Days as a whole number; empty or 0: kept forever."""
    text = value.strip().replace("_", "")
    if not text:
        return 0
    try:
        days = int(text)
    except ValueError:
        raise ConfigError(
            "FIELDCRM_HISTORY_RETENTION_DAYS must be a whole number of days (0 or unset keeps"
            " history forever)"
        ) from None
    if not 0 <= days <= 100_000:
        raise ConfigError("FIELDCRM_HISTORY_RETENTION_DAYS must be from 0 to 100000 days")
    return days


def parse_tile_url(value: str | None) -> str:
    """FIELDCRM_TILE_URL: unset -> the default tiles; "", "none" -> none; else an http(s)
    URL template with {z}, {x} and {y}."""
    if value is None:
        return DEFAULT_TILE_URL
    value = value.strip()
    if value.lower() in ("", "none", "off"):
        return ""
    parts = urlsplit(value.replace("{s}", "a"))
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(
            "FIELDCRM_TILE_URL must be an https:// URL template (or none), e.g."
            " https://tiles.example/{z}/{x}/{y}.png"
        )
    missing = [name for name in ("{z}", "{x}", "{y}") if name not in value]
    if missing:
        raise ConfigError(f"FIELDCRM_TILE_URL lacks {', '.join(missing)}: {value[:80]!r}")
    return value


def parse_tile_pack(value: str) -> Path | None:
    """FIELDCRM_TILE_PACK: the path of a readable file, or nothing."""
    value = value.strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"FIELDCRM_TILE_PACK: {value[:120]!r} is not a file (an .mbtiles)")
    return path


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    try:
        interval = float(env.get("FIELDCRM_DISPATCH_INTERVAL_S", "5"))
    except ValueError as exc:
        raise ConfigError("FIELDCRM_DISPATCH_INTERVAL_S must be a number of seconds") from exc
    if interval <= 0:
        raise ConfigError("FIELDCRM_DISPATCH_INTERVAL_S must be positive")
    try:
        row_cache_mb = float(env.get("FIELDCRM_ROW_CACHE_MB", "128"))
    except ValueError as exc:
        raise ConfigError("FIELDCRM_ROW_CACHE_MB must be a number of MiB") from exc
    if not 0 <= row_cache_mb <= 1_000_000:
        raise ConfigError("FIELDCRM_ROW_CACHE_MB must be from 0 to 1000000 MiB")
    database = parse_database_url(env.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    trusted_proxies = parse_trusted_proxies(env.get("FIELDCRM_TRUSTED_PROXIES", ""))
    default_region = parse_default_region(env.get("FIELDCRM_DEFAULT_REGION", ""))
    tile_url = parse_tile_url(env.get("FIELDCRM_TILE_URL"))
    tile_attribution = env.get("FIELDCRM_TILE_ATTRIBUTION", "").strip()
    if tile_url == DEFAULT_TILE_URL and not tile_attribution:
        tile_attribution = DEFAULT_TILE_ATTRIBUTION
    pool_min, pool_max = parse_pool_sizes(env)
    return Settings(
        database=msgspec.structs.replace(
            database,
            postgres_data_dir=env.get("FIELDCRM_DATA_DIR", "./data"),
            pool_min=pool_min,
            pool_max=pool_max,
        ),
        push_allowed_hosts=env.get("FIELDCRM_PUSH_ALLOWED_HOSTS"),
        trusted_proxies=trusted_proxies,
        dispatch_interval_s=interval,
        tile_url=tile_url,
        tile_attribution=tile_attribution,
        tile_pack=parse_tile_pack(env.get("FIELDCRM_TILE_PACK", "")),
        push_subject=env.get("FIELDCRM_PUSH_SUBJECT", "mailto:admin@fieldcrm.invalid"),
        # FIELDCRM_PWA_DIR serves another copy of the app (the e2e update test changes one).
        pwa_dir=Path(env.get("FIELDCRM_PWA_DIR") or DEFAULT_PWA_DIR),
        geocoder={name: value for name, value in env.items() if name.startswith(GEOCODER_PREFIX)},
        row_cache_bytes=int(row_cache_mb * 2**20),
        write_rate_per_min=_count(env, "FIELDCRM_WRITE_RATE_PER_MIN", DEFAULT_WRITE_RATE_PER_MIN),
        write_burst=_count(env, "FIELDCRM_WRITE_BURST", DEFAULT_WRITE_BURST),
        team_quota_records=_count(env, "FIELDCRM_TEAM_QUOTA_RECORDS", DEFAULT_TEAM_QUOTA_RECORDS),
        timezone=parse_timezone(env.get("FIELDCRM_TIMEZONE", "UTC")),
        default_region=default_region,
        blob_url=parse_blob_url(env.get("FIELDCRM_BLOB_URL", "")),
        history_retention_days=parse_retention_days(env.get("FIELDCRM_HISTORY_RETENTION_DAYS", "")),
        database_replica=parse_replica_url(env.get("DATABASE_REPLICA_URL", ""), database),
        replica_max_lag_s=parse_replica_max_lag(env.get("FIELDCRM_REPLICA_MAX_LAG_S", "")),
    )
