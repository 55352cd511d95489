"""What the server may expect of any geocoder: the result it gets and the error it retries.

The adapters live in gazetteer.py (offline, the default) and geocoders.py (geopy's online
services); both answer with a GeocodeResult, so the server never sees which one it used
except through ``source``.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

# How exactly a result places the address, from finest to coarsest. The server should tell
# the user when an account was only placed at its city or country, and may refuse to show
# coarse points on a map or in nearby searches.
Precision = Literal["street", "postcode", "city", "region", "country", "unknown"]


@dataclass(frozen=True, slots=True)
class GeocodeResult:
    """A geocoded address: WGS-84 degrees, the precision reached, and who answered."""

    lat: float
    lng: float
    precision: Precision
    source: str  # "offline", or the geopy service name, e.g. "nominatim"


class GeocodingUnavailable(Exception):
    """The geocoding service failed (down, timed out, refused, rate-limited); retry later.

    "Nothing found" is not an error: geocoders answer None for it.
    """


class Geocoder(Protocol):
    """Turns an account's address into coordinates.

    Calls block (online geocoders wait for the network and for their rate limit), so the
    server should call them from a worker thread, never on the event loop.
    """

    def geocode_address(
        self,
        *,
        street: str | None = None,
        city: str | None = None,
        region: str | None = None,
        postal_code: str | None = None,
        country: str | None = None,
    ) -> GeocodeResult | None:
        """Return where the address is, None when it cannot be found.

        Raises GeocodingUnavailable when the service could not answer.
        """
        ...
