"""Reading how exactly an online geocoder placed an address from the result it sent back."""

from collections.abc import Mapping
from typing import Any

from geo.geocoding import Precision

# What the services call their results, and the precision each one means. Nominatim says
# it in `addresstype` (and `type`), Google in `types`, Mapbox in `place_type`, OpenCage in
# `components._type`.
_PRECISION_OF_TYPE: dict[str, Precision] = {
    **dict.fromkeys(
        (
            "house",
            "building",
            "house_number",
            "road",
            "street",
            "street_address",
            "route",
            "premise",
            "subpremise",
            "address",
        ),
        "street",
    ),
    **dict.fromkeys(("postcode", "postal_code"), "postcode"),
    **dict.fromkeys(
        (
            "city",
            "town",
            "village",
            "hamlet",
            "municipality",
            "suburb",
            "neighbourhood",
            "neighborhood",
            "quarter",
            "borough",
            "city_district",
            "locality",
            "sublocality",
            "postal_town",
            "isolated_dwelling",
        ),
        "city",
    ),
    **dict.fromkeys(
        (
            "state",
            "province",
            "region",
            "county",
            "state_district",
            "district",
            "administrative_area_level_1",
            "administrative_area_level_2",
        ),
        "region",
    ),
    "country": "country",
}


def precision_from_raw(raw: Mapping[str, Any]) -> Precision:
    """Return the precision a geopy result's raw record shows, "unknown" if it shows none."""
    names: list[Any] = [raw.get("addresstype"), raw.get("type")]
    if isinstance(raw.get("types"), list):
        names.extend(raw["types"])
    if isinstance(raw.get("place_type"), list):
        # Mapbox calls a city a "place"; Nominatim uses "place" for anything at all.
        names.extend("city" if name == "place" else name for name in raw["place_type"])
    components = raw.get("components")
    if isinstance(components, Mapping):
        names.append(components.get("_type"))
    for name in names:
        if isinstance(name, str) and name.lower() in _PRECISION_OF_TYPE:
            return _PRECISION_OF_TYPE[name.lower()]
    return _precision_of_rank(raw.get("place_rank"))


def _precision_of_rank(place_rank: Any) -> Precision:
    # Nominatim's search rank, for results whose type is not in the table (shops, offices):
    # 4 country, 5-12 state and county, 13-25 city down to neighbourhood, 26+ street, house.
    try:
        rank = int(place_rank)
    except (TypeError, ValueError):
        return "unknown"
    if rank >= 26:
        return "street"
    if rank >= 13:
        return "city"
    if rank >= 5:
        return "region"
    return "country" if rank >= 1 else "unknown"
