"""Checks of point sets in the plane (polygons, calibration points) in plain Python.

Written here rather than with shapely: importing shapely (and numpy with it) takes about 0.2 s,
which is most of what `appliance validate` may take, and a profile's polygons have a few dozen
points at most. The runtime's geometry, where arrays pay off, is in `appliance.geometry`."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, pairwise

Point = tuple[float, float]
MIN_CALIBRATION_POINTS = 4
_COLLINEAR_TOLERANCE = 1e-6


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why `points` is not a simple polygon with an area, or None when it is."""
    if len(points) < 3:
        return f"a polygon needs at least 3 points, got {len(points)}"
    ring = [p for i, p in enumerate(points) if p != points[i - 1]] or list(points[:1])
    if len(ring) < 3 or all(_collinear(ring[0], ring[1], c, _scale(ring)) for c in ring[2:]):
        return "polygon has no area: its points are collinear"
    edges = list(zip(ring, ring[1:] + ring[:1], strict=True))
    last = len(edges) - 1
    for i, j in combinations(range(len(edges)), 2):
        adjacent = j == i + 1 or (i == 0 and j == last)
        if (where := _crossing(edges[i], edges[j], adjacent)) is not None:
            return f"not a simple polygon: self-intersection at ({where[0]:g}, {where[1]:g})"
    return None


def polyline_problem(points: Sequence[Point]) -> str | None:
    """Why `points` is not a line to count crossings of, or None when it is."""
    for index, (a, b) in enumerate(pairwise(points)):
        if a == b:
            return f"points {index} and {index + 1} are the same: a segment of zero length"
    return None


def outside_image(points: Sequence[Point], size: tuple[int, int] | None) -> Point | None:
    """The first point outside an image of `size` (width, height), or when the size is not
    known, with a negative coordinate."""
    width, height = size if size else (float("inf"), float("inf"))
    return next((p for p in points if not (0 <= p[0] <= width and 0 <= p[1] <= height)), None)


def calibration_problem(image: Sequence[Point], floor: Sequence[Point]) -> str | None:
    """Why these point pairs cannot define a homography, or None when they can."""
    if len(image) < MIN_CALIBRATION_POINTS:
        return f"calibration needs at least {MIN_CALIBRATION_POINTS} points, got {len(image)}"
    for name, points in (("image", image), ("floor", floor)):
        duplicate = _first_duplicate(points)
        if duplicate is not None:
            return f"{name} point {list(duplicate)} appears more than once"
        if not _has_four_in_general_position(points):
            return f"{name} points are degenerate: no 4 of them have no three on a line"
    return None


def _crossing(first: tuple[Point, Point], second: tuple[Point, Point], adjacent: bool) -> Point | None:
    """Where two edges of a ring meet where they should not, or None. Adjacent edges share a
    corner, so only their overlap (a spike back along the same line) counts."""
    (a, b), (c, d) = first, second
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if adjacent:
        shared = b if b in (c, d) else a
        other_first, other_second = (a if shared == b else b), (d if shared == c else c)
        if _cross(shared, other_first, other_second) == 0 and _dot(shared, other_first, other_second) > 0:
            return shared
        return None
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        t = d3 / (d3 - d4)
        return c[0] + t * (d[0] - c[0]), c[1] + t * (d[1] - c[1])
    for point, (p, q), side in ((a, second, d1), (b, second, d2), (c, first, d3), (d, first, d4)):
        if side == 0 and _on_segment(point, p, q):
            return point
    return None


def _cross(origin: Point, a: Point, b: Point) -> float:
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])


def _dot(origin: Point, a: Point, b: Point) -> float:
    return (a[0] - origin[0]) * (b[0] - origin[0]) + (a[1] - origin[1]) * (b[1] - origin[1])


def _on_segment(point: Point, p: Point, q: Point) -> bool:
    return min(p[0], q[0]) <= point[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= point[1] <= max(p[1], q[1])


def _scale(points: Sequence[Point]) -> float:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return max(max(xs) - min(xs), max(ys) - min(ys), 1e-12)


def _first_duplicate(points: Sequence[Point]) -> Point | None:
    seen: set[Point] = set()
    for point in points:
        key = (float(point[0]), float(point[1]))
        if key in seen:
            return key
        seen.add(key)
    return None


def _collinear(a: Point, b: Point, c: Point, scale: float) -> bool:
    return abs(_cross(a, b, c)) <= _COLLINEAR_TOLERANCE * scale * scale


def _has_four_in_general_position(points: Sequence[Point]) -> bool:
    scale = _scale(points)
    return any(
        not any(_collinear(a, b, c, scale) for a, b, c in combinations(quad, 3)) for quad in combinations(points, 4)
    )
