"""The geocoder settings, and the online adapter against a fake Nominatim on 127.0.0.1."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from geo.gazetteer import OfflineGeocoder
from geo.geocoders import (
    DEFAULT_USER_AGENT,
    GeocoderConfig,
    GeocodingUnavailable,
    OnlineGeocoder,
    config_from_env,
    geocoder_from_env,
    make_geocoder,
    precision_from_raw,
)

# What Nominatim's /search?format=json answers, trimmed to the fields that matter here.
BELLECOUR = {
    "place_id": 100,
    "osm_type": "node",
    "lat": "45.7578137",
    "lon": "4.8320114",
    "class": "place",
    "type": "house",
    "place_rank": 30,
    "addresstype": "place",
    "name": "",
    "display_name": "1, Place Bellecour, Lyon, Métropole de Lyon, France",
}
LYON = {
    "place_id": 200,
    "osm_type": "relation",
    "lat": "45.7578137",
    "lon": "4.8320114",
    "class": "boundary",
    "type": "administrative",
    "place_rank": 16,
    "addresstype": "city",
    "name": "Lyon",
    "display_name": "Lyon, Métropole de Lyon, Rhône, France",
}


@dataclass
class FakeNominatim:
    """Answers /search like Nominatim for Lyon, and fails on demand."""

    port: int = 0
    mode: str = "ok"  # "ok", "error" (HTTP 500) or "slow" (answers after the client gave up)
    requests: list[tuple[dict[str, str], str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, params: dict[str, str]) -> list[dict[str, object]]:
        if params.get("city") != "Lyon":
            return []
        if "street" not in params:
            return [LYON]
        return [BELLECOUR] if params["street"] == "1 Place Bellecour" else []


def make_handler(fake: FakeNominatim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            fake.requests.append((params, self.headers.get("User-Agent", "")))
            if fake.mode == "slow":
                fake.release.wait(5)
            if fake.mode == "error" or url.path != "/search":
                self.send_error(500 if fake.mode == "error" else 404)
                return
            body = json.dumps(fake.answer(params)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output quiet

    return Handler


@pytest.fixture
def nominatim(monkeypatch) -> Iterator[FakeNominatim]:
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fake = FakeNominatim()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def env_for(fake: FakeNominatim, **extra: str) -> dict[str, str]:
    return {
        "FIELDCRM_GEOCODER": "nominatim",
        "FIELDCRM_GEOCODER_DOMAIN": f"127.0.0.1:{fake.port}",
        "FIELDCRM_GEOCODER_SCHEME": "http",
        "FIELDCRM_GEOCODER_MIN_DELAY_S": "0",
        "FIELDCRM_GEOCODER_MAX_RETRIES": "0",
        **extra,
    }


def test_nominatim_finds_a_street_address(nominatim):
    geocoder = geocoder_from_env(env_for(nominatim))
    assert isinstance(geocoder, OnlineGeocoder)
    result = geocoder.geocode_address(street="1 Place Bellecour", city="Lyon", country="France")
    assert result is not None
    assert (result.lat, result.lng) == pytest.approx((45.7578137, 4.8320114))
    assert (result.precision, result.source) == ("street", "nominatim")

    params, user_agent = nominatim.requests[-1]
    assert user_agent == DEFAULT_USER_AGENT
    assert user_agent.startswith("fieldcrm/")
    # Asked field by field, as Nominatim's structured search takes it.
    assert params["street"] == "1 Place Bellecour"
    assert params["city"] == "Lyon"
    assert params["country"] == "France"
    assert params["format"] == "json"


def test_an_unknown_street_falls_back_to_the_city(nominatim):
    geocoder = geocoder_from_env(
        env_for(nominatim, FIELDCRM_GEOCODER_USER_AGENT="acme-crm/2 (ops@acme.test)")
    )
    result = geocoder.geocode_address(street="99 Nowhere Lane", city="Lyon", country="France")
    assert result is not None and result.precision == "city"
    assert [params.get("street") for params, _ in nominatim.requests] == ["99 Nowhere Lane", None]
    assert {user_agent for _, user_agent in nominatim.requests} == {"acme-crm/2 (ops@acme.test)"}


def test_nothing_found_is_none(nominatim):
    geocoder = geocoder_from_env(env_for(nominatim))
    assert geocoder.geocode_address(city="Atlantis") is None
    assert geocoder.geocode_address() is None
    assert len(nominatim.requests) == 1  # an empty address is not sent


def test_a_server_error_raises_geocoding_unavailable_after_the_retries(nominatim):
    nominatim.mode = "error"
    geocoder = geocoder_from_env(
        env_for(nominatim, FIELDCRM_GEOCODER_MAX_RETRIES="1", FIELDCRM_GEOCODER_ERROR_WAIT_S="0")
    )
    with pytest.raises(GeocodingUnavailable, match="nominatim"):
        geocoder.geocode_address(city="Lyon", country="France")
    assert len(nominatim.requests) == 2  # the first try and one retry


def test_a_timeout_raises_geocoding_unavailable(nominatim):
    nominatim.mode = "slow"
    geocoder = geocoder_from_env(env_for(nominatim, FIELDCRM_GEOCODER_TIMEOUT_S="0.2"))
    with pytest.raises(GeocodingUnavailable):
        geocoder.geocode_address(city="Lyon", country="France")


def test_requests_are_spaced_by_the_minimum_delay(nominatim):
    geocoder = geocoder_from_env(env_for(nominatim, FIELDCRM_GEOCODER_MIN_DELAY_S="0.3"))
    started = time.monotonic()
    geocoder.geocode_address(city="Lyon")
    geocoder.geocode_address(city="Lyon")
    assert time.monotonic() - started >= 0.3
    assert len(nominatim.requests) == 2


def test_defaults():
    config = config_from_env({})
    assert config == GeocoderConfig()
    assert (config.service, config.min_delay_s, config.domain, config.scheme) == (
        "offline",
        1.0,
        None,
        None,
    )
    assert "fieldcrm" in config.user_agent and "https://" in config.user_agent
    assert isinstance(geocoder_from_env({}), OfflineGeocoder)
    assert isinstance(make_geocoder(GeocoderConfig(service="nominatim")), OnlineGeocoder)


def test_other_geopy_services_are_chosen_by_name():
    photon = make_geocoder(config_from_env({"FIELDCRM_GEOCODER": "Photon"}))
    assert isinstance(photon, OnlineGeocoder) and photon.source == "photon"
    keyed = make_geocoder(GeocoderConfig(service="opencage", api_key="k"))
    assert isinstance(keyed, OnlineGeocoder)


@pytest.mark.parametrize(
    "environ",
    [
        {"FIELDCRM_GEOCODER": "no-such-service"},
        {"FIELDCRM_GEOCODER": "bing"},  # needs FIELDCRM_GEOCODER_API_KEY
        {"FIELDCRM_GEOCODER": "nominatim", "FIELDCRM_GEOCODER_MIN_DELAY_S": "soon"},
        {"FIELDCRM_GEOCODER": "nominatim", "FIELDCRM_GEOCODER_MIN_DELAY_S": "-1"},
        {"FIELDCRM_GEOCODER": "nominatim", "FIELDCRM_GEOCODER_MAX_RETRIES": "1.5"},
        {"FIELDCRM_GEOCODER_OFFLINE_MIN_POPULATION": "12"},
        {"FIELDCRM_GEOCODER": "googlev3", "FIELDCRM_GEOCODER_DOMAIN": "x"},  # takes no domain
    ],
)
def test_bad_settings_are_refused_at_start(environ):
    with pytest.raises(ValueError):
        geocoder_from_env(environ)


@pytest.mark.parametrize(
    ("raw", "precision"),
    [
        (BELLECOUR, "street"),  # addresstype "place" says nothing; type "house" does
        (LYON, "city"),
        ({"addresstype": "road", "type": "residential", "place_rank": 26}, "street"),
        ({"addresstype": "postcode", "type": "postcode"}, "postcode"),
        ({"addresstype": "village", "type": "village"}, "city"),
        ({"addresstype": "state", "type": "administrative", "place_rank": 8}, "region"),
        ({"addresstype": "country", "type": "administrative", "place_rank": 4}, "country"),
        ({"addresstype": "shop", "type": "bakery", "place_rank": 30}, "street"),
        ({"types": ["locality", "political"]}, "city"),  # Google
        ({"types": ["street_address"]}, "street"),
        ({"place_type": ["postcode"]}, "postcode"),  # Mapbox
        ({"components": {"_type": "city"}}, "city"),  # OpenCage
        ({"importance": 0.5}, "unknown"),
        ({"place_rank": "not a number"}, "unknown"),
    ],
)
def test_precision_from_raw(raw, precision):
    assert precision_from_raw(raw) == precision
