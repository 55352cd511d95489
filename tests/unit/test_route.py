"""geo.route (SPEC section 14): the best order up to 10 stops, within 5% of it up to 50."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from geographiclib.geodesic import Geodesic

from geo.distance import distance_m
from geo.route import EXACT_STOPS, MAX_STOPS, _held_karp, _local_search, _matrix, plan_route

PARIS = (48.8566, 2.3522)


def spread(rng: random.Random, count: int, clustered: bool = False) -> list[tuple[float, float]]:
    """Stops across greater Paris, uniform or in a few clusters (towns of a territory)."""
    if not clustered:
        return [(48.7 + rng.random() * 0.3, 2.1 + rng.random() * 0.5) for _ in range(count)]
    towns = [(48.7 + rng.random() * 0.3, 2.1 + rng.random() * 0.5) for _ in range(3)]
    return [
        (lat + rng.gauss(0, 0.01), lng + rng.gauss(0, 0.01))
        for lat, lng in (rng.choice(towns) for _ in range(count))
    ]


def path_length(start: tuple[float, float], stops: list[tuple[float, float]], back: bool) -> float:
    path = [start, *stops, start] if back and stops else [start, *stops]
    return sum(distance_m(*a, *b) for a, b in itertools.pairwise(path))


def brute_force(start: tuple[float, float], stops: list[tuple[float, float]], back: bool) -> float:
    """The shortest of all orders (distances looked up in a geopy-free table of geodesics)."""
    d = _matrix([start, *stops])
    return min(
        _length_of(d, list(order), back)
        for order in itertools.permutations(range(1, len(stops) + 1))
    )


@pytest.mark.parametrize("back", [False, True])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 7])
def test_small_routes_are_the_best_order(count: int, back: bool) -> None:
    rng = random.Random(count * 2 + back)
    for _ in range(5):
        stops = spread(rng, count, clustered=rng.random() < 0.5)
        route = plan_route(PARIS, stops, back_to_start=back)
        assert sorted(route.order) == list(range(count))
        ordered = [stops[i] for i in route.order]
        assert route.distance_m == pytest.approx(path_length(PARIS, ordered, back), abs=1e-6)
        assert route.distance_m == pytest.approx(brute_force(PARIS, stops, back), abs=1e-6)
        assert route.as_given_m == pytest.approx(path_length(PARIS, stops, back), abs=1e-6)
        assert len(route.legs) == count + (1 if back and count else 0)
        assert sum(route.legs) == pytest.approx(route.distance_m)


def test_ten_stops_are_solved_exactly_like_every_permutation_says() -> None:
    """At EXACT_STOPS Held-Karp agrees with trying all orders (checked on 8, cheaper)."""
    rng = random.Random(10)
    stops = spread(rng, 8)
    assert plan_route(PARIS, stops).distance_m == pytest.approx(brute_force(PARIS, stops, False))
    ten = spread(rng, EXACT_STOPS)
    route = plan_route(PARIS, ten)
    d = _matrix([PARIS, *ten])
    assert route.distance_m == pytest.approx(_length_of(d, _held_karp(d, EXACT_STOPS, False)))


def _length_of(d: list[list[float]], order: list[int], back: bool = False) -> float:
    path = [0, *order, 0] if back and order else [0, *order]
    return sum(d[a][b] for a, b in itertools.pairwise(path))


def test_beyond_ten_stops_the_order_is_within_five_percent_of_the_best() -> None:
    """The local search against exact answers on 11-12 stops, uniform and clustered."""
    rng = random.Random(2026)
    worst = 1.0
    for trial in range(24):
        count = 11 + trial % 2
        stops = spread(rng, count, clustered=trial % 3 == 0)
        d = _matrix([PARIS, *stops])
        for back in (False, True):
            best = _length_of(d, _held_karp(d, count, back), back)
            found = _length_of(d, _local_search(d, count, back), back)
            worst = max(worst, found / best)
    assert worst <= 1.05


def test_fifty_stops_on_a_ring_are_driven_round_the_ring() -> None:
    """Stops on a circle, sent shuffled: the best round trip follows the circle."""
    rng = random.Random(50)
    centre_lat, centre_lng = PARIS
    ring = [
        _direct(centre_lat, centre_lng, 360.0 * k / (MAX_STOPS + 1), 8_000.0)
        for k in range(MAX_STOPS + 1)
    ]
    start, stops = ring[0], ring[1:]
    shuffled = stops[:]
    rng.shuffle(shuffled)
    route = plan_route(start, shuffled, back_to_start=True)
    best = path_length(start, stops, back=True)
    assert route.distance_m <= best * 1.05
    assert route.distance_m < route.as_given_m / 3


def test_thirty_random_stops_on_convex_rounds_are_within_five_percent_of_the_best() -> None:
    """Issue 17: within 5% at 30 stops, on random sets whose best order is known: stops at
    random bearings on a random ellipse (a convex round), start among them. A round trip
    through points in convex position is shortest in the order round the curve."""
    rng = random.Random(30)
    for _ in range(8):
        a, b = rng.uniform(3_000, 12_000), rng.uniform(3_000, 12_000)
        tilt = rng.uniform(0, math.pi)
        bearings = sorted(rng.uniform(0, 2 * math.pi) for _ in range(31))
        ring = []
        for angle in bearings:
            x, y = a * math.cos(angle), b * math.sin(angle)
            east = x * math.cos(tilt) - y * math.sin(tilt)
            north = x * math.sin(tilt) + y * math.cos(tilt)
            azimuth = math.degrees(math.atan2(east, north))
            ring.append(_direct(*PARIS, azimuth, math.hypot(east, north)))
        start, stops = ring[0], ring[1:]
        best = path_length(start, stops, back=True)
        shuffled = stops[:]
        rng.shuffle(shuffled)
        route = plan_route(start, shuffled, back_to_start=True)
        assert sorted(route.order) == list(range(30))
        assert route.distance_m <= best * 1.05, (route.distance_m, best)
        assert route.distance_m >= best * (1 - 1e-6)  # nothing beats the best


def test_fifty_stops_in_towns_beat_the_order_given_and_a_lower_bound_holds() -> None:
    rng = random.Random(51)
    stops = spread(rng, MAX_STOPS, clustered=True)
    route = plan_route(PARIS, stops)
    assert sorted(route.order) == list(range(MAX_STOPS))
    assert route.distance_m < route.as_given_m
    # Every stop is reached by some leg: the path is at least the farthest stop away.
    assert route.distance_m >= max(distance_m(*PARIS, *s) for s in stops) - 1e-6


def test_the_same_stops_always_get_the_same_order() -> None:
    stops = spread(random.Random(3), 30)
    assert plan_route(PARIS, stops).order == plan_route(PARIS, stops).order


def test_too_many_stops_or_a_bad_point_are_refused() -> None:
    with pytest.raises(ValueError):
        plan_route(PARIS, [PARIS] * (MAX_STOPS + 1))
    with pytest.raises(ValueError):
        plan_route(PARIS, [(91.0, 0.0)])
    with pytest.raises(ValueError):
        plan_route((math.nan, 0.0), [PARIS])


def _direct(lat: float, lng: float, azimuth: float, metres: float) -> tuple[float, float]:
    end = Geodesic.WGS84.Direct(lat, lng, azimuth, metres)
    return end["lat2"], end["lon2"]
