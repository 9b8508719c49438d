"""Pure geometry on image and floor points."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from shapely import Polygon, is_valid_reason

Point = tuple[float, float]
MIN_CALIBRATION_POINTS = 4
_COLLINEAR_TOLERANCE = 1e-6
MISFIT_TOLERANCE_CM = 50.0
MISFIT_TOLERANCE_FRACTION = 0.02


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


def calibration_misfit(image: Sequence[Point], floor: Sequence[Point]) -> tuple[int, float] | None:
    """With more points than a homography needs, the point that does not fit the others, as
    (index, cm off when fitted without it), or None when all fit within the tolerance: the
    larger of MISFIT_TOLERANCE_CM and MISFIT_TOLERANCE_FRACTION of the floor's extent."""
    if len(image) <= MIN_CALIBRATION_POINTS or calibration_problem(image, floor):
        return None
    xs, ys = [p[0] for p in floor], [p[1] for p in floor]
    tolerance = max(MISFIT_TOLERANCE_CM, MISFIT_TOLERANCE_FRACTION * max(max(xs) - min(xs), max(ys) - min(ys)))
    whole = fit_homography(image, floor)
    errors = np.linalg.norm(whole.to_floor(image) - np.asarray(floor, dtype=np.float64), axis=1)
    if float(errors.max()) <= tolerance:
        return None
    worst, worst_error = 0, -1.0
    for index in range(len(image)):
        others = [i for i in range(len(image)) if i != index]
        image_others, floor_others = [image[i] for i in others], [floor[i] for i in others]
        if calibration_problem(image_others, floor_others):
            continue
        fitted = fit_homography(image_others, floor_others).to_floor([image[index]])[0]
        error = float(np.linalg.norm(fitted - np.asarray(floor[index], dtype=np.float64)))
        if error > worst_error:
            worst, worst_error = index, error
    return worst, worst_error


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


@dataclass(frozen=True)
class Homography:
    """Image pixels to floor centimetres, fitted to calibration points."""

    matrix: npt.NDArray[np.float64]
    reprojection_error_cm: float  # mean floor distance between the fitted and the given points

    def to_floor(self, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Floor positions (cm) of image points, an (N, 2) array."""
        return _transform(self.matrix, points)

    def to_image(self, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Image positions of floor points (cm), the inverse mapping."""
        return _transform(np.linalg.inv(self.matrix), points)


def _transform(matrix: npt.NDArray[np.floating[Any]], points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """`points` (N, 2) through a homography. Written with numpy rather than cv2.perspectiveTransform,
    which returns (0, 0) for a point that maps to infinity (on the horizon): here it is infinite."""
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    projected = flat @ matrix[:, :2].T + matrix[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(projected[:, :2] / projected[:, 2:3], dtype=np.float64)


def fit_homography(image: Sequence[Point], floor: Sequence[Point]) -> Homography:
    """Least-squares homography over every calibration point; refuses degenerate point sets."""
    problem = calibration_problem(image, floor)
    if problem:
        raise ValueError(problem)
    source = np.asarray(image, dtype=np.float64)
    target = np.asarray(floor, dtype=np.float64)
    matrix, _ = cv2.findHomography(source, target, 0)
    if matrix is None:
        raise ValueError("calibration points do not define a homography")
    fitted = Homography(np.asarray(matrix, dtype=np.float64), 0.0)
    error = float(np.mean(np.linalg.norm(fitted.to_floor(source) - target, axis=1)))
    return Homography(fitted.matrix, error)
