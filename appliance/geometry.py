"""Pure geometry on image and floor points."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import combinations

from shapely import Polygon, is_valid_reason

Point = tuple[float, float]
MIN_CALIBRATION_POINTS = 4
_COLLINEAR_TOLERANCE = 1e-6


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why `points` is not a simple polygon with an area, or None when it is."""
    if len(points) < 3:
        return f"a polygon needs at least 3 points, got {len(points)}"
    polygon = Polygon(points)
    if polygon.convex_hull.area == 0:
        return "polygon has no area: its points are collinear"
    if not polygon.is_valid:
        reason = re.fullmatch(r"(.+)\[(\S+) (\S+)\]", is_valid_reason(polygon))
        where = f"{reason[1].lower()} at ({reason[2]}, {reason[3]})" if reason else "invalid"
        return f"not a simple polygon: {where}"
    return None


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


def _first_duplicate(points: Sequence[Point]) -> Point | None:
    seen: set[Point] = set()
    for point in points:
        key = (float(point[0]), float(point[1]))
        if key in seen:
            return key
        seen.add(key)
    return None


def _collinear(a: Point, b: Point, c: Point, scale: float) -> bool:
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return abs(cross) <= _COLLINEAR_TOLERANCE * scale * scale


def _has_four_in_general_position(points: Sequence[Point]) -> bool:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    scale = max(max(xs) - min(xs), max(ys) - min(ys), 1e-12)
    return any(
        not any(_collinear(a, b, c, scale) for a, b, c in combinations(quad, 3)) for quad in combinations(points, 4)
    )
