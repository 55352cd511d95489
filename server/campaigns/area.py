"""The geometry of campaigns: which accounts lie in an area drawn on the map, and an order
of an owner's accounts in which each is near the next (for spreading visits over days).

An area is flat on the map: its corners are joined by straight lines in (lng, lat), as the
map draws them (good at the scale of a town or a region; an area across the antimeridian
is not supported). pwa/js/area.js applies the same rule on the phone.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]  # (lat, lng)


def corners(kind: str, points: Sequence[Point]) -> list[Point]:
    """The polygon of an area: a rectangle's four corners from two opposite ones, or the
    polygon's own."""
    if kind == "rectangle":
        (lat1, lng1), (lat2, lng2) = points
        return [(lat1, lng1), (lat1, lng2), (lat2, lng2), (lat2, lng1)]
    return list(points)


def bounds(polygon: Sequence[Point]) -> tuple[float, float, float, float]:
    """(south, west, north, east)."""
    lats = [p[0] for p in polygon]
    lngs = [p[1] for p in polygon]
    return min(lats), min(lngs), max(lats), max(lngs)


def contains(polygon: Sequence[Point], lat: float, lng: float) -> bool:
    """Whether (lat, lng) is inside the polygon (even-odd rule; a point on a rectangle's
    edge is inside)."""
    south, west, north, east = bounds(polygon)
    if not (south <= lat <= north and west <= lng <= east):
        return False
    if len(polygon) == 4 and _axis_aligned(polygon):
        return True
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        lat_i, lng_i = polygon[i]
        lat_j, lng_j = polygon[j]
        if (lat_i > lat) != (lat_j > lat):
            crossing = lng_i + (lat - lat_i) * (lng_j - lng_i) / (lat_j - lat_i)
            if lng < crossing:
                inside = not inside
        j = i
    return inside


def _axis_aligned(polygon: Sequence[Point]) -> bool:
    return all(
        a[0] == b[0] or a[1] == b[1]
        for a, b in zip(polygon, [*polygon[1:], polygon[0]], strict=True)
    )


def hilbert_order(points: Sequence[Point | None]) -> list[int]:
    """The indexes of `points` along a Hilbert curve over their bounding box (nearby points
    come close together in it); points without a position (None) last, in their order."""
    placed = [(i, p) for i, p in enumerate(points) if p is not None]
    if not placed:
        return list(range(len(points)))
    south, west, north, east = bounds([p for _, p in placed])
    size = 1 << 16
    span_lat = (north - south) or 1.0
    span_lng = (east - west) or 1.0

    def key(point: Point) -> int:
        x = int((point[1] - west) / span_lng * (size - 1))
        y = int((point[0] - south) / span_lat * (size - 1))
        return _hilbert(size, x, y)

    order = [i for i, _ in sorted(placed, key=lambda item: (key(item[1]), item[0]))]
    return order + [i for i, p in enumerate(points) if p is None]


def _hilbert(size: int, x: int, y: int) -> int:
    """The distance along the Hilbert curve of a size x size grid of cell (x, y)."""
    d = 0
    s = size // 2
    while s > 0:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:
            if rx == 1:
                x, y = size - 1 - x, size - 1 - y
            x, y = y, x
        s //= 2
    return d
