import math

import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.nearby import rank

# Candidates scattered up to a few hundred kilometres around the centre, some repeated at the
# same spot so that ties happen, plus the odd one far away.
offsets = st.tuples(
    st.floats(min_value=-3.0, max_value=3.0), st.floats(min_value=-3.0, max_value=3.0)
)


def brute_force(lat, lng, candidates, radius_m, limit):
    measured = [(geodesic((lat, lng), (c_lat, c_lng)).m, key) for key, c_lat, c_lng in candidates]
    within = sorted((d, key) for d, key in measured if d <= radius_m)
    return [(key, d) for d, key in within[:limit]]


@settings(max_examples=120, deadline=None)
@given(
    lat=st.floats(min_value=-85.0, max_value=85.0),
    lng=st.floats(min_value=-180.0, max_value=180.0),
    spots=st.lists(offsets, max_size=40),
    repeats=st.lists(st.integers(min_value=0, max_value=39), max_size=10),
    radius_m=st.floats(min_value=0.0, max_value=500_000.0),
    limit=st.integers(min_value=0, max_value=50),
)
def test_rank_is_the_brute_force_filter_and_sort(lat, lng, spots, repeats, radius_m, limit):
    points = [(max(-90.0, min(90.0, lat + dlat)), lng + dlng) for dlat, dlng in spots]
    points += [points[i] for i in repeats if i < len(points)]
    points.append((-lat, lng + 180.0))  # the antipode, never within 500 km
    candidates = [(f"acct-{n:03d}", p_lat, p_lng) for n, (p_lat, p_lng) in enumerate(points)]
    candidates.reverse()  # the database's order must not matter

    got = rank(lat, lng, candidates, radius_m, limit)
    expected = brute_force(lat, lng, candidates, radius_m, limit)

    assert [key for key, _ in got] == [key for key, _ in expected]
    for (_, got_m), (_, expected_m) in zip(got, expected, strict=True):
        assert got_m == pytest.approx(expected_m, abs=1.0)


def test_nearest_first_ties_by_key_and_limit():
    candidates = [
        ("c", 48.8600, 2.3500),
        ("b", 48.8566, 2.3522),  # the centre itself
        ("a", 48.8600, 2.3500),  # same spot as "c"
        ("far", 45.7578, 4.8320),  # Lyon, 392 km away
    ]
    result = rank(48.8566, 2.3522, candidates, radius_m=10_000, limit=10)
    assert [key for key, _ in result] == ["b", "a", "c"]
    assert result[0][1] == 0.0
    assert result[1][1] == result[2][1] == pytest.approx(411.1, abs=0.5)
    assert [key for key, _ in rank(48.8566, 2.3522, candidates, 10_000, limit=2)] == ["b", "a"]
    assert rank(48.8566, 2.3522, candidates, 10_000, limit=0) == []


def test_the_radius_is_inclusive():
    d = geodesic((0.0, 0.0), (0.0, 0.01)).m
    assert [k for k, _ in rank(0.0, 0.0, [(1, 0.0, 0.01)], radius_m=d, limit=5)] == [1]
    assert rank(0.0, 0.0, [(1, 0.0, 0.01)], radius_m=d - 0.001, limit=5) == []


def test_works_across_the_antimeridian_and_over_a_pole():
    across = rank(0.0, 179.99, [("east", 0.0, -179.99), ("west", 0.0, 179.0)], 5_000, 5)
    assert [key for key, _ in across] == ["east"]
    over = rank(89.99, 0.0, [("other-side", 89.99, 180.0)], 5_000, 5)
    assert over[0][1] == pytest.approx(2_234.0, abs=5.0)


@pytest.mark.parametrize(
    ("centre", "radius_m", "limit"),
    [
        ((91.0, 0.0), 10.0, 5),
        ((math.nan, 0.0), 10.0, 5),
        ((0.0, 0.0), -1.0, 5),
        ((0.0, 0.0), 10.0, -1),
    ],
)
def test_invalid_arguments_are_refused(centre, radius_m, limit):
    with pytest.raises(ValueError):
        rank(*centre, [], radius_m, limit)


def test_an_invalid_candidate_is_refused_not_skipped():
    with pytest.raises(ValueError):
        rank(0.0, 0.0, [("bad", 95.0, 0.0)], 1_000, 5)
