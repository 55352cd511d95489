"""The order of a day's stops that makes the drive shortest (SPEC section 14).

A rep starts where they are and visits every stop once, ending at the last stop or, when
asked, back at the start. Distances are WGS-84 geodesics (geo.distance), the same measure as
nearby search: a straight line, not a road, so the order is a good one for the road too
wherever roads are not far from straight, and it needs no routing service, offline.

- Up to EXACT_STOPS stops the order is the best one: Held-Karp dynamic programming over
  subsets, 2^n * n^2 steps (about 100,000 at 10 stops).
- Up to MAX_STOPS stops it is within a few percent of the best: several starting orders
  (nearest neighbour, then seeded random insertions), each improved by 2-opt and Or-opt
  moves until none helps, the shortest kept. The spec asks for 5%; tests/unit/test_route.py
  measures it against exact answers and instances whose best order is known.

The PWA orders stops on the phone with the same rule (pwa/js/route.js).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from geo.distance import distance_m

EXACT_STOPS = 10
MAX_STOPS = 50
RESTARTS = 8  # starting orders tried above EXACT_STOPS: nearest neighbour + random insertions
OR_OPT_SEGMENTS = (1, 2, 3)
_SEED = 20261206  # fixed: the same stops always get the same answer

Point = tuple[float, float]


@dataclass(frozen=True)
class Route:
    """The stops' indexes in driving order, the total length, and each leg's length (metres).

    `legs[0]` runs from the start to the first stop; with `back_to_start`, the last leg
    runs from the last stop to the start. `as_given_m` is the length in the order given."""

    order: tuple[int, ...]
    distance_m: float
    as_given_m: float
    legs: tuple[float, ...]


def plan_route(start: Point, stops: Sequence[Point], *, back_to_start: bool = False) -> Route:
    """Order `stops` (lat, lng) to make the path from `start` shortest.

    Raises ValueError for more than MAX_STOPS stops or an invalid point."""
    if len(stops) > MAX_STOPS:
        raise ValueError(f"at most {MAX_STOPS} stops, not {len(stops)}")
    points = [start, *stops]
    d = _matrix(points)
    n = len(stops)
    given = list(range(1, n + 1))
    if n <= EXACT_STOPS:
        best = _held_karp(d, n, back_to_start)
    else:
        best = _local_search(d, n, back_to_start)
    legs = _legs(d, best, back_to_start)
    return Route(
        order=tuple(i - 1 for i in best),
        distance_m=sum(legs),
        as_given_m=sum(_legs(d, given, back_to_start)),
        legs=tuple(legs),
    )


def _matrix(points: Sequence[Point]) -> list[list[float]]:
    size = len(points)
    d = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1, size):
            d[i][j] = d[j][i] = distance_m(*points[i], *points[j])
    return d


def _legs(d: list[list[float]], order: Sequence[int], back_to_start: bool) -> list[float]:
    path = [0, *order, 0] if back_to_start and order else [0, *order]
    return [d[a][b] for a, b in zip(path, path[1:], strict=False)]


def _length(d: list[list[float]], order: Sequence[int], back_to_start: bool) -> float:
    return sum(_legs(d, order, back_to_start))


def _held_karp(d: list[list[float]], n: int, back_to_start: bool) -> list[int]:
    """The best order of stops 1..n (node 0 is the start): cost[mask][j] is the shortest path
    from the start through the stops in `mask` ending at stop j+1."""
    if n == 0:
        return []
    inf = float("inf")
    full = (1 << n) - 1
    cost = [[inf] * n for _ in range(1 << n)]
    came = [[-1] * n for _ in range(1 << n)]
    for j in range(n):
        cost[1 << j][j] = d[0][j + 1]
    for mask in range(1, full + 1):
        row = cost[mask]
        for j in range(n):
            here = row[j]
            if here == inf:
                continue
            dj = d[j + 1]
            for k in range(n):
                bit = 1 << k
                if mask & bit:
                    continue
                through = here + dj[k + 1]
                if through < cost[mask | bit][k]:
                    cost[mask | bit][k] = through
                    came[mask | bit][k] = j
    ends = [cost[full][j] + (d[j + 1][0] if back_to_start else 0.0) for j in range(n)]
    j = min(range(n), key=ends.__getitem__)
    order: list[int] = []
    mask = full
    while j != -1:
        order.append(j + 1)
        j, mask = came[mask][j], mask & ~(1 << j)
    order.reverse()
    return order


def _local_search(d: list[list[float]], n: int, back_to_start: bool) -> list[int]:
    rng = random.Random(_SEED)
    best: list[int] = []
    best_length = float("inf")
    for attempt in range(RESTARTS):
        order = _nearest_neighbour(d, n) if attempt == 0 else _random_insertion(d, n, rng)
        _improve(d, order, back_to_start)
        length = _length(d, order, back_to_start)
        if length < best_length - 1e-9:
            best, best_length = order, length
    return best


def _nearest_neighbour(d: list[list[float]], n: int) -> list[int]:
    left = set(range(1, n + 1))
    order: list[int] = []
    here = 0
    while left:
        here = min(left, key=lambda k: (d[here][k], k))
        left.remove(here)
        order.append(here)
    return order


def _random_insertion(d: list[list[float]], n: int, rng: random.Random) -> list[int]:
    """Stops taken in a random order, each put where it lengthens the path least."""
    stops = list(range(1, n + 1))
    rng.shuffle(stops)
    order: list[int] = []
    for k in stops:
        path = [0, *order]
        best_at, best_cost = len(order), d[path[-1]][k]  # appended at the end
        for at in range(len(order)):
            a, b = path[at], path[at + 1]
            extra = d[a][k] + d[k][b] - d[a][b]
            if extra < best_cost:
                best_at, best_cost = at, extra
        order.insert(best_at, k)
    return order


def _improve(d: list[list[float]], order: list[int], back_to_start: bool) -> None:
    """2-opt and Or-opt moves, in place, until neither shortens the path."""
    while _two_opt(d, order, back_to_start) or _or_opt(d, order, back_to_start):
        pass


def _node(order: list[int], i: int, back_to_start: bool) -> int | None:
    """The node at position i of the path [start, *order, (start)]; None past an open end."""
    if i == 0:
        return 0
    if i <= len(order):
        return order[i - 1]
    return 0 if back_to_start else None


def _edge(d: list[list[float]], a: int | None, b: int | None) -> float:
    return 0.0 if a is None or b is None else d[a][b]


def _two_opt(d: list[list[float]], order: list[int], back_to_start: bool) -> bool:
    """Reverse one stretch of stops when that shortens the path; True when it did."""
    n = len(order)
    for i in range(1, n):
        a, b = _node(order, i - 1, back_to_start), order[i - 1]
        for j in range(i + 1, n + 1):
            c, e = order[j - 1], _node(order, j + 1, back_to_start)
            delta = _edge(d, a, c) + _edge(d, b, e) - _edge(d, a, b) - _edge(d, c, e)
            if delta < -1e-7:
                order[i - 1 : j] = reversed(order[i - 1 : j])
                return True
    return False


def _or_opt(d: list[list[float]], order: list[int], back_to_start: bool) -> bool:
    """Move a run of 1-3 stops elsewhere (either way round) when that shortens the path."""
    n = len(order)
    for size in OR_OPT_SEGMENTS:
        for i in range(n - size + 1):
            run = order[i : i + size]
            before, after = (
                _node(order, i, back_to_start),
                _node(order, i + size + 1, back_to_start),
            )
            removed = _edge(d, before, run[0]) + _edge(d, run[-1], after) - _edge(d, before, after)
            rest = order[:i] + order[i + size :]
            for at in range(len(rest) + 1):
                if at == i:
                    continue
                p = _node(rest, at, back_to_start)
                q = _node(rest, at + 1, back_to_start)
                for piece in (run, run[::-1]):
                    added = _edge(d, p, piece[0]) + _edge(d, piece[-1], q) - _edge(d, p, q)
                    if added - removed < -1e-7:
                        order[:] = rest[:at] + piece + rest[at:]
                        return True
    return False
