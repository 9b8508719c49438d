"""Pure geometry on image and floor points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from appliance.planar import MIN_CALIBRATION_POINTS, Point, calibration_problem

__all__ = ["Homography", "Point", "calibration_misfit", "calibration_problem", "fit_homography"]
MISFIT_TOLERANCE_CM = 50.0
MISFIT_TOLERANCE_FRACTION = 0.02


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
