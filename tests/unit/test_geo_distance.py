import math

import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.distance import distance_lower_bound_m, distance_m

latitudes = st.floats(min_value=-90.0, max_value=90.0)
longitudes = st.floats(min_value=-180.0, max_value=180.0)


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, latitudes, longitudes)
def test_distance_agrees_with_geopy_geodesic(lat1, lng1, lat2, lng2):
    expected = geodesic((lat1, lng1), (lat2, lng2)).m
    assert distance_m(lat1, lng1, lat2, lng2) == pytest.approx(expected, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, latitudes, longitudes)
def test_lower_bound_never_exceeds_the_geodesic_and_stays_close(lat1, lng1, lat2, lng2):
    exact = distance_m(lat1, lng1, lat2, lng2)
    bound = distance_lower_bound_m(lat1, lng1, lat2, lng2)
    assert bound <= exact + 1e-6
    # The ellipsoid curves at most (1 - e^2)^-1.5 = 1.0101 times more gently than that sphere.
    assert bound >= exact / 1.0102 - 1e-6


def test_known_distance_paris_to_lyon():
    # Hôtel de Ville, Paris to Place Bellecour, Lyon: about 392 km.
    assert distance_m(48.8566, 2.3522, 45.7578, 4.8320) == pytest.approx(392_000, rel=0.01)


def test_same_point_is_zero_and_longitudes_wrap():
    assert distance_m(10.0, 20.0, 10.0, 20.0) == 0.0
    assert distance_m(0.0, 180.0, 0.0, -180.0) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("lat", "lng"), [(90.5, 0.0), (-91.0, 0.0), (math.nan, 0.0), (0.0, math.inf), (0.0, math.nan)]
)
def test_invalid_points_are_refused(lat, lng):
    with pytest.raises(ValueError):
        distance_m(lat, lng, 0.0, 0.0)
    with pytest.raises(ValueError):
        distance_lower_bound_m(0.0, 0.0, lat, lng)
