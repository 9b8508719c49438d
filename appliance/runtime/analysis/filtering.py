"""Which detections become candidates for tracking: a score the tracker uses, a plausible box
size, feet in the region of interest. Class and overlap were settled once already, by the
detector's head, which also keeps weaker detections for the anonymizer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from appliance.config.model import BoxFilterConfig
from appliance.runtime.types import Detection


class RegionOfInterest:
    """An image polygon; a person is inside when the foot point is (the boundary counts)."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        self.polygon = shapely.Polygon(points)
        shapely.prepare(self.polygon)

    def contains(self, detections: Sequence[Detection]) -> list[bool]:
        if not detections:
            return []
        feet = np.array([d.foot_point for d in detections])
        return [bool(inside) for inside in shapely.intersects_xy(self.polygon, feet[:, 0], feet[:, 1])]


def within_size(detection: Detection, limits: BoxFilterConfig) -> bool:
    x1, y1, x2, y2 = detection.box
    width, height = x2 - x1, y2 - y1
    return (
        (limits.min_height_px is None or height >= limits.min_height_px)
        and (limits.max_height_px is None or height <= limits.max_height_px)
        and (limits.min_width_px is None or width >= limits.min_width_px)
        and (limits.max_width_px is None or width <= limits.max_width_px)
    )


def select_people(
    detections: Sequence[Detection], *, min_score: float, box_filter: BoxFilterConfig, roi: RegionOfInterest | None
) -> list[Detection]:
    """People worth tracking: scoring at least `min_score`, of a plausible size, standing in the
    region of interest."""
    kept = [d for d in detections if d.score >= min_score and within_size(d, box_filter)]
    if roi is not None:
        kept = [d for d, inside in zip(kept, roi.contains(kept), strict=True) if inside]
    return kept
