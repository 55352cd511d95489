"""The nearby search's exact step (server.nearby.services.rank_by_position): the same answer
as ranking every candidate, with one geodesic per distinct position and no more than
needed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from geo.nearby import rank
from server.nearby import services


def candidates(rng: random.Random, count: int) -> list[tuple[str, float, float]]:
    points = [(45.76 + rng.gauss(0, 0.05), 4.84 + rng.gauss(0, 0.05)) for _ in range(count // 4)]
    return [(f"{n:05d}", *rng.choice(points)) for n in range(count)]  # many share a point


def positions(found: list[tuple[str, float, float]]) -> list[services.Candidate]:
    """The candidates as the database gives them: one row per position, with its ids."""
    at: dict[tuple[float, float], list[str]] = {}
    for key, lat, lng in found:
        at.setdefault((lat, lng), []).append(key)
    return [(tuple(keys), lat, lng) for (lat, lng), keys in at.items()]


@pytest.mark.parametrize("limit", [1, 7, 50, 500])
def test_the_same_answer_as_ranking_every_candidate(limit: int) -> None:
    rng = random.Random(limit)
    found = candidates(rng, 2_000)
    bounded = services.lower_bounds(45.76, 4.84, positions(found), 8_000.0)
    expected = rank(45.76, 4.84, found, 8_000.0, limit)
    assert services.rank_by_position(45.76, 4.84, bounded, 8_000.0, limit) == expected


def test_one_geodesic_per_position_and_no_more_than_needed(monkeypatch: Any) -> None:
    calls = []
    real = services.distance_m

    def counted(*args: float) -> float:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(services, "distance_m", counted)
    pile = [(f"{n:05d}", 45.76, 4.84) for n in range(10_000)]
    spread = candidates(random.Random(1), 4_000)
    bounded = services.lower_bounds(45.76, 4.84, positions(pile + spread), 25_000.0)
    ranked = services.rank_by_position(45.76, 4.84, bounded, 25_000.0, 500)
    assert [key for key, _ in ranked] == [f"{n:05d}" for n in range(500)]
    assert len(calls) < 20  # the pile's one point, and the few as near as it
