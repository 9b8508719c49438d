"""Distances between people in centimetres, by the method a camera is configured with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from appliance.config.model import CalibrationPoint
from appliance.geometry import Homography, fit_homography
from appliance.runtime.types import Track

Matrix = npt.NDArray[np.float64]


class DistanceMethod(ABC):
    """Pairwise distances: symmetric, zero on the diagonal, in cm."""

    @abstractmethod
    def matrix(self, tracks: Sequence[Track]) -> Matrix: ...


class CenterPointsDistance(DistanceMethod):
    """Pixel distance between box centres, scaled by the assumed person height over the mean of
    the two box heights (the reference system's CenterPointsDistance)."""

    def __init__(self, person_height_cm: float) -> None:
        self.person_height_cm = person_height_cm

    def matrix(self, tracks: Sequence[Track]) -> Matrix:
        boxes = _boxes(tracks)
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        return _pixel_distances(centres, boxes) * self._scale(boxes)

    def _scale(self, boxes: Matrix) -> Matrix:
        """cm per pixel for each pair: person height over each box's height, averaged."""
        per_box = self.person_height_cm / np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        return (per_box[:, None] + per_box[None, :]) / 2


class FourCornersDistance(CenterPointsDistance):
    """The smallest scaled distance between corresponding corners of the two boxes (the
    reference system's FourCornerPointsDistance)."""

    def matrix(self, tracks: Sequence[Track]) -> Matrix:
        boxes = _boxes(tracks)
        corners = [boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]]
        nearest = np.min([_pixel_distances(c, boxes) for c in corners], axis=0)
        return cast(Matrix, nearest * self._scale(boxes))


class CalibratedDistance(DistanceMethod):
    """Floor distance between foot points mapped through the camera's homography."""

    def __init__(self, homography: Homography) -> None:
        self.homography = homography

    def matrix(self, tracks: Sequence[Track]) -> Matrix:
        if len(tracks) < 2:
            return np.zeros((len(tracks), len(tracks)))
        return _euclidean(self.homography.to_floor([t.foot_point for t in tracks]))


def create_distance_method(
    method: str, person_height_cm: float, calibration: Sequence[CalibrationPoint] | None
) -> DistanceMethod:
    if method == "calibrated":
        if not calibration:
            raise ValueError("the calibrated method needs calibration points")
        return CalibratedDistance(fit_homography([p.image for p in calibration], [p.floor for p in calibration]))
    if method == "four_corners":
        return FourCornersDistance(person_height_cm)
    return CenterPointsDistance(person_height_cm)


def _boxes(tracks: Sequence[Track]) -> Matrix:
    return np.asarray([t.box for t in tracks], dtype=np.float64).reshape(-1, 4)


def _pixel_distances(points: Matrix, boxes: Matrix) -> Matrix:
    if len(boxes) < 2:
        return np.zeros((len(boxes), len(boxes)))
    return _euclidean(points)


def _euclidean(points: Matrix) -> Matrix:
    """Distances between every two 2-D points (a broadcast: cheaper than scipy's pdist for a few
    dozen points, and exactly symmetric)."""
    offsets = points[:, None, :] - points[None, :, :]
    return cast(Matrix, np.hypot(offsets[..., 0], offsets[..., 1]))
