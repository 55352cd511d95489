"""Latitude/longitude boxes that a nearby search can hand to an ordinary index.

The exact geodesic test (nearby.py) is too slow to run on every account, so the server first
asks the database for the accounts inside one or two boxes around the circle, then ranks
those. The boxes must never leave out a point inside the circle; they may let in a few
outside it.

The boxes are those of the circle on a sphere of radius INNER_SPHERE_RADIUS_M (see
distance.py): distances on that sphere never exceed geodesic ones, so every point within
``radius_m`` on the ellipsoid is within ``radius_m`` on the sphere, where the box is exact.
That sphere is about 0.5% smaller than the Earth, so the boxes are that much too wide.
"""

import math
from typing import NamedTuple

from geo.distance import INNER_SPHERE_RADIUS_M, check_point

# Each bound is pushed out by about a centimetre so that floating-point rounding can never
# leave a point that lies exactly on the circle outside its box.
_MARGIN_DEG = 1e-7


class Box(NamedTuple):
    """Inclusive bounds in degrees, with lng_min <= lng_max (never across the antimeridian)."""

    lat_min: float
    lat_max: float
    lng_min: float
    lng_max: float


def search_boxes(lat: float, lng: float, radius_m: float) -> list[Box]:
    """Return one or two boxes that together hold every point within radius_m of (lat, lng).

    Two boxes when the circle crosses the antimeridian, one otherwise. A circle that holds a
    pole gets a box over every longitude from its far edge up to that pole. Raises ValueError
    for a latitude outside [-90, 90], a non-finite longitude, or a negative or NaN radius.
    """
    check_point(lat, lng)
    if not radius_m >= 0.0:
        raise ValueError(f"radius_m must be a non-negative number, not {radius_m!r}")

    angle = radius_m / INNER_SPHERE_RADIUS_M  # the circle's angular radius on the inner sphere
    lat_min = lat - math.degrees(angle) - _MARGIN_DEG
    lat_max = lat + math.degrees(angle) + _MARGIN_DEG
    if lat_max >= 90.0 or lat_min <= -90.0:
        # The circle holds a pole, so it meets every meridian.
        return [Box(max(lat_min, -90.0), min(lat_max, 90.0), -180.0, 180.0)]

    # The widest longitude reached by a spherical cap that holds neither pole. The cap's
    # tangent meridians touch it at sin(dlng) = sin(angle) / cos(lat); since the cap holds no
    # pole, angle < 90 - |lat| and the ratio stays below 1.
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    half_span = math.degrees(math.asin(min(ratio, 1.0))) + _MARGIN_DEG
    centre = _wrap_longitude(lng)
    lng_min, lng_max = centre - half_span, centre + half_span
    # Inclusive on purpose: a stored longitude of -180 is the same meridian as 180.
    if lng_min <= -180.0:
        return [
            Box(lat_min, lat_max, -180.0, lng_max),
            Box(lat_min, lat_max, lng_min + 360.0, 180.0),
        ]
    if lng_max >= 180.0:
        return [
            Box(lat_min, lat_max, lng_min, 180.0),
            Box(lat_min, lat_max, -180.0, lng_max - 360.0),
        ]
    return [Box(lat_min, lat_max, lng_min, lng_max)]


def box_contains(box: Box, lat: float, lng: float) -> bool:
    """Return True when (lat, lng) is inside the box or on its edge."""
    return box.lat_min <= lat <= box.lat_max and box.lng_min <= lng <= box.lng_max


def _wrap_longitude(lng: float) -> float:
    """Bring a longitude into [-180, 180)."""
    return (lng + 180.0) % 360.0 - 180.0
