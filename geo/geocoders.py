"""Choosing the server's geocoder, and wrapping geopy's online services to answer like it.

The offline gazetteer is the default: it needs no network and no account, and it places an
address at its city. An online geocoder (Nominatim, public or self-hosted, or any service
geopy knows) places it at its street, at the cost of a network call per address and that
service's usage policy. docs/geo.md describes the settings.
"""

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from geopy.exc import GeocoderNotFound, GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import get_geocoder_for_service

from geo.gazetteer import OfflineGeocoder
from geo.gazetteer_index import DATASETS, DEFAULT_MIN_POPULATION
from geo.geocoding import Geocoder, GeocodeResult, GeocodingUnavailable, Precision
from geo.precision import precision_from_raw

__all__ = [
    "DEFAULT_USER_AGENT",
    "GeocodeResult",
    "Geocoder",
    "GeocoderConfig",
    "GeocodingUnavailable",
    "OnlineGeocoder",
    "Precision",
    "config_from_env",
    "geocoder_from_env",
    "make_geocoder",
    "precision_from_raw",
]


def _version() -> str:
    try:
        return metadata.version("fieldcrm")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "dev"


# Nominatim's usage policy asks for an agent that names the application; operators should
# add a contact, e.g. "fieldcrm/0.1 (ops@example.com)", through FIELDCRM_GEOCODER_USER_AGENT.
DEFAULT_USER_AGENT = f"fieldcrm/{_version()} (+https://github.com/fieldcrm)"


DEFAULT_SERVICE = "offline"  # the gazetteer: city level, no network


@dataclass(frozen=True, slots=True)
class GeocoderConfig:
    """Which geocoder the server uses and how it may use it; see docs/geo.md."""

    service: str = DEFAULT_SERVICE  # "offline", "off", or a name geopy knows ("nominatim")
    domain: str | None = None  # e.g. a self-hosted Nominatim, "nominatim.example.com:8080"
    scheme: str | None = None  # "https" (geopy's default) or "http"
    user_agent: str = DEFAULT_USER_AGENT
    api_key: str | None = None  # for the services that need one
    min_delay_s: float = 1.0  # between two requests; 1 s is public Nominatim's policy
    timeout_s: float = 10.0
    max_retries: int = 2  # after a failed request, before GeocodingUnavailable
    error_wait_s: float = 5.0  # before each retry
    offline_min_population: int = DEFAULT_MIN_POPULATION


OFF = "off"  # FIELDCRM_GEOCODER=off: no geocoding at all


def _service(environ: Mapping[str, str]) -> str:
    return (environ.get("FIELDCRM_GEOCODER", "").strip() or DEFAULT_SERVICE).lower()


def geocoding_is_off(environ: Mapping[str, str]) -> bool:
    """Whether the FIELDCRM_GEOCODER* variables in `environ` turn geocoding off.

    `environ` maps variable names to values; the server passes what its settings read
    (geo never reads the process's environment itself)."""
    return _service(environ) == OFF


def config_from_env(environ: Mapping[str, str]) -> GeocoderConfig:
    """Read the FIELDCRM_GEOCODER* variables in `environ`; raise ValueError naming a bad one."""
    defaults = GeocoderConfig()

    def text(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    def number(name: str, default: float) -> float:
        raw = text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
        if not value >= 0.0:
            raise ValueError(f"{name} must not be negative, not {raw!r}")
        return value

    def whole(name: str, default: int) -> int:
        raw = text(name)
        if raw is None:
            return default
        if not raw.isdigit():
            raise ValueError(f"{name} must be a whole number, not {raw!r}")
        return int(raw)

    offline_min_population = whole(
        "FIELDCRM_GEOCODER_OFFLINE_MIN_POPULATION", defaults.offline_min_population
    )
    if offline_min_population not in DATASETS:
        raise ValueError(
            f"FIELDCRM_GEOCODER_OFFLINE_MIN_POPULATION must be one of {DATASETS},"
            f" not {offline_min_population}"
        )
    return GeocoderConfig(
        service=_service(environ),
        domain=text("FIELDCRM_GEOCODER_DOMAIN"),
        scheme=text("FIELDCRM_GEOCODER_SCHEME"),
        user_agent=text("FIELDCRM_GEOCODER_USER_AGENT") or defaults.user_agent,
        api_key=text("FIELDCRM_GEOCODER_API_KEY"),
        min_delay_s=number("FIELDCRM_GEOCODER_MIN_DELAY_S", defaults.min_delay_s),
        timeout_s=number("FIELDCRM_GEOCODER_TIMEOUT_S", defaults.timeout_s),
        max_retries=whole("FIELDCRM_GEOCODER_MAX_RETRIES", defaults.max_retries),
        error_wait_s=number("FIELDCRM_GEOCODER_ERROR_WAIT_S", defaults.error_wait_s),
        offline_min_population=offline_min_population,
    )


def geocoder_from_env(environ: Mapping[str, str]) -> Geocoder:
    """Return the geocoder the FIELDCRM_GEOCODER* variables in `environ` configure; raise
    ValueError naming a bad one (see config_from_env and make_geocoder)."""
    return make_geocoder(config_from_env(environ))


def make_geocoder(config: GeocoderConfig) -> Geocoder:
    """Return the geocoder a configuration names. Raises ValueError for a service geopy does
    not know, a setting that service does not take, or one it needs and did not get."""
    if config.service == "offline":
        return OfflineGeocoder(config.offline_min_population)
    try:
        service_class = get_geocoder_for_service(config.service)
    except GeocoderNotFound:
        raise ValueError(
            f"FIELDCRM_GEOCODER={config.service!r} is neither 'offline' nor a geopy geocoder"
        ) from None

    accepted = inspect.signature(service_class).parameters
    options: dict[str, Any] = {"user_agent": config.user_agent, "timeout": config.timeout_s}
    for name, value in (("domain", config.domain), ("scheme", config.scheme)):
        if value is None:
            continue
        if name not in accepted:
            raise ValueError(f"the {config.service} geocoder does not take a {name}")
        options[name] = value
    if config.api_key is not None:
        key_name = next((n for n in ("api_key", "apikey", "key") if n in accepted), None)
        if key_name is None:
            raise ValueError(f"the {config.service} geocoder does not take an API key")
        options[key_name] = config.api_key
    try:
        service = service_class(**options)
    except (TypeError, GeopyError) as exc:  # e.g. a service that needs a key it did not get
        raise ValueError(
            f"cannot set up the {config.service} geocoder ({exc}); see docs/geo.md"
        ) from exc
    return OnlineGeocoder(config.service, service, config)


# The address fields, and what the geocoders that take a query field by field call them:
# Nominatim, HERE and Geocodio use the first names, Bing the camel-case ones.
_STRUCTURED_NAMES = {
    "street": ("street", "addressLine"),
    "city": ("city", "locality"),
    "region": ("state", "adminDistrict"),
    "postal_code": ("postalcode", "postal_code", "postalCode", "zipcode"),
    "country": ("country", "countryRegion"),
}


class OnlineGeocoder:
    """Answers the server's Geocoder calls with a geopy geocoder, within its rate limit.

    Failed requests are retried (``max_retries`` times, ``error_wait_s`` apart); when they
    keep failing, GeocodingUnavailable is raised for the caller to retry later. When the
    service does not find an address with its street, it is asked again without the street,
    and the result's precision says what was reached.
    """

    def __init__(self, source: str, service: Any, config: GeocoderConfig) -> None:
        self.source = source
        self._field_names: set[str] = set(getattr(service, "structured_query_params", ()))
        self._geocode = RateLimiter(
            service.geocode,
            min_delay_seconds=config.min_delay_s,
            max_retries=config.max_retries,
            # RateLimiter insists on waiting at least as long between retries as between calls.
            error_wait_seconds=max(config.error_wait_s, config.min_delay_s),
            swallow_exceptions=False,
        )

    def geocode_address(
        self,
        *,
        street: str | None = None,
        city: str | None = None,
        region: str | None = None,
        postal_code: str | None = None,
        country: str | None = None,
    ) -> GeocodeResult | None:
        """Return where the service places the address; None when it does not find it.

        Raises GeocodingUnavailable when the service fails, times out or refuses.
        """
        address = {
            "street": street,
            "city": city,
            "region": region,
            "postal_code": postal_code,
            "country": country,
        }
        given = {
            field: value.strip() for field, value in address.items() if value and value.strip()
        }
        if not given:
            return None
        attempts = [given]
        if "street" in given and ("city" in given or "postal_code" in given):
            attempts.append({field: value for field, value in given.items() if field != "street"})
        for attempt in attempts:
            location = self._ask(self._query(attempt))
            if location is not None:
                return GeocodeResult(
                    float(location.latitude),
                    float(location.longitude),
                    precision_from_raw(location.raw),
                    self.source,
                )
        return None

    def _query(self, address: dict[str, str]) -> dict[str, str] | str:
        """Return the address field by field when the service takes that, else as one line."""
        structured = {}
        for field, value in address.items():
            name = next((n for n in _STRUCTURED_NAMES[field] if n in self._field_names), None)
            if name is None:
                break
            structured[name] = value
        else:
            return structured
        locality = " ".join(filter(None, (address.get("postal_code"), address.get("city"))))
        parts = (address.get("street"), locality, address.get("region"), address.get("country"))
        return ", ".join(part for part in parts if part)

    def _ask(self, query: dict[str, str] | str) -> Any:
        try:
            return self._geocode(query, exactly_one=True)
        except GeopyError as exc:
            raise GeocodingUnavailable(f"the {self.source} geocoder failed: {exc}") from exc
