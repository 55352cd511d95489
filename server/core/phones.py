"""Phone numbers in E.164 (`accounts.phone_e164`, SPEC section 3), with the phonenumbers
library (Google's libphonenumber metadata): the key duplicates are matched on.

A number written in international form ("+33 4 78 ...", "0033 4 78 ...") reads alone; a
national one ("04 78 ...") is read for the account's country, else for the organisation's
(FIELDCRM_DEFAULT_REGION). A number that does not parse, or cannot be a number of that
country (wrong length), has no E.164 form: null.
"""

from __future__ import annotations

import functools

import phonenumbers

from geo.countries import country_code

_default_region: str | None = None


def set_default_region(region: str | None) -> None:
    """The organisation's country (FIELDCRM_DEFAULT_REGION), set once at start."""
    global _default_region
    _default_region = region.upper() if region else None


def default_region() -> str | None:
    return _default_region


def e164(phone: str | None, country: str | None = None) -> str | None:
    """`phone` in E.164 ("+33478000000"), or None when it cannot be read as a number."""
    if not phone or len(phone) > 50:
        return None
    return _e164(phone, country_code(country) or _default_region)


# Parsing a number takes phonenumbers 50-100 us: a sync batch's account edits often write
# the same numbers again, an import reads each number twice (matching its rows, then writing
# them) and the contacts' duplicate finder at every call; the same answers are kept
# (docs/decisions/2026-12-06-sync-write-cpu.md).
@functools.lru_cache(maxsize=65_536)
def _e164(phone: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
