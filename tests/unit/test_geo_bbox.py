import math

import pytest
from geopy.distance import geodesic
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geo.bbox import Box, box_contains, search_boxes

MAX_RADIUS_M = 500_000.0

# Centres anywhere, with extra weight where boxes get hard: near the poles and the antimeridian.
centre_latitudes = st.one_of(
    st.floats(min_value=-90.0, max_value=90.0),
    st.floats(min_value=85.0, max_value=90.0),
    st.floats(min_value=-90.0, max_value=-85.0),
)
centre_longitudes = st.one_of(
    st.floats(min_value=-180.0, max_value=180.0),
    st.floats(min_value=175.0, max_value=180.0),
    st.floats(min_value=-180.0, max_value=-175.0),
)
radii = st.one_of(st.floats(min_value=0.0, max_value=MAX_RADIUS_M), st.just(MAX_RADIUS_M))


def inside_any(boxes: list[Box], lat: float, lng: float) -> bool:
    return any(box_contains(box, lat, lng) for box in boxes)


@settings(max_examples=150, deadline=None)
@given(
    lat=centre_latitudes,
    lng=centre_longitudes,
    radius_m=radii,
    bearings=st.lists(st.floats(min_value=0.0, max_value=360.0), min_size=1, max_size=8),
    fractions=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=8),
)
@example(lat=90.0, lng=0.0, radius_m=1000.0, bearings=[0.0], fractions=[1.0])
@example(lat=-89.999, lng=179.999, radius_m=MAX_RADIUS_M, bearings=[90.0], fractions=[1.0])
@example(lat=0.0, lng=180.0, radius_m=10_000.0, bearings=[90.0, 270.0], fractions=[1.0])
@example(lat=60.0, lng=-179.9, radius_m=50_000.0, bearings=[270.0], fractions=[1.0])
def test_boxes_hold_every_point_within_the_radius(lat, lng, radius_m, bearings, fractions):
    boxes = search_boxes(lat, lng, radius_m)
    assert 1 <= len(boxes) <= 2
    # Points on the circle itself at fixed bearings, plus random points inside it.
    targets = [(bearing, radius_m) for bearing in range(0, 360, 30)]
    targets += [(b, radius_m * f) for b, f in zip(bearings, fractions, strict=False)]
    for bearing, distance in targets:
        point = geodesic(meters=distance).destination((lat, lng), bearing)
        assert inside_any(boxes, point.latitude, point.longitude), (bearing, distance, point)


@settings(max_examples=100, deadline=None)
@given(
    lat=st.floats(min_value=-70.0, max_value=70.0),
    lng=st.floats(min_value=-160.0, max_value=160.0),
    radius_m=st.floats(min_value=100.0, max_value=MAX_RADIUS_M),
)
def test_boxes_are_barely_taller_than_the_circle(lat, lng, radius_m):
    (box,) = search_boxes(lat, lng, radius_m)
    north = geodesic(meters=radius_m).destination((lat, lng), 0.0).latitude
    south = geodesic(meters=radius_m).destination((lat, lng), 180.0).latitude
    # The inner sphere is at most about 1% smaller than the meridian's radius of curvature.
    assert box.lat_max - lat <= (north - lat) * 1.011 + 1e-6
    assert lat - box.lat_min <= (lat - south) * 1.011 + 1e-6


def test_twenty_five_km_at_mid_latitude_is_a_tight_box():
    (box,) = search_boxes(45.0, 5.0, 25_000.0)
    assert box.lat_max - box.lat_min < 0.5
    # The circle itself spans 0.449 degrees of latitude and 0.636 of longitude.
    assert box.lat_max - box.lat_min == pytest.approx(0.449, abs=0.004)
    assert box.lng_max - box.lng_min == pytest.approx(0.636, abs=0.006)


def test_a_circle_across_the_antimeridian_gets_two_boxes():
    boxes = search_boxes(-17.0, 179.9, 50_000.0)  # Fiji
    assert len(boxes) == 2
    assert {box.lng_min for box in boxes} >= {-180.0}
    assert {box.lng_max for box in boxes} >= {180.0}
    assert inside_any(boxes, -17.0, -179.8)
    assert inside_any(boxes, -17.0, 179.6)
    assert not inside_any(boxes, -17.0, 0.0)


def test_a_longitude_of_minus_180_is_found_at_plus_180():
    boxes = search_boxes(0.0, 179.99, 5_000.0)
    assert inside_any(boxes, 0.0, -180.0)
    assert inside_any(boxes, 0.0, 180.0)


def test_a_circle_holding_a_pole_spans_every_longitude_up_to_it():
    (box,) = search_boxes(89.8, 10.0, 50_000.0)
    assert (box.lng_min, box.lng_max, box.lat_max) == (-180.0, 180.0, 90.0)
    assert box.lat_min == pytest.approx(89.8 - 0.4522, abs=1e-3)
    # Across the pole, on the other side of the world's longitudes.
    assert inside_any([box], 89.9, -170.0)
    (south,) = search_boxes(-89.9, 0.0, 20_000.0)
    assert (south.lat_min, south.lng_min, south.lng_max) == (-90.0, -180.0, 180.0)


def test_near_a_pole_the_longitude_span_widens_but_stays_bounded():
    (box,) = search_boxes(88.0, 0.0, 100_000.0)  # the pole is 222 km away
    assert 20.0 < box.lng_max - box.lng_min < 180.0


def test_zero_radius_is_a_point_sized_box():
    (box,) = search_boxes(12.5, -45.0, 0.0)
    assert box_contains(box, 12.5, -45.0)
    assert box.lat_max - box.lat_min < 1e-6


def test_a_centre_longitude_outside_the_usual_range_is_wrapped():
    assert search_boxes(10.0, 370.0, 1000.0) == search_boxes(10.0, 10.0, 1000.0)


@pytest.mark.parametrize(
    ("lat", "lng", "radius_m"),
    [
        (91.0, 0.0, 10.0),
        (math.nan, 0.0, 10.0),
        (0.0, math.inf, 10.0),
        (0.0, 0.0, -1.0),
        (0, 0, math.nan),
    ],
)
def test_invalid_searches_are_refused(lat, lng, radius_m):
    with pytest.raises(ValueError):
        search_boxes(lat, lng, radius_m)


def test_box_contains_is_inclusive():
    box = Box(1.0, 2.0, 3.0, 4.0)
    assert box_contains(box, 1.0, 3.0) and box_contains(box, 2.0, 4.0)
    assert not box_contains(box, 0.999, 3.5) and not box_contains(box, 1.5, 4.001)
