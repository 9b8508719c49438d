"""Motion gating: whether a frame needs the detector, or can reuse the detections of the last
frame that had it. Compared with that frame (not the previous one), slow changes add up until
they count; and the detector runs at least every `max_interval_s` whatever moved."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from appliance.config.model import MotionConfig
from appliance.runtime.types import Image

WIDTH = 160  # pixels across: enough to see a person walk, cheap to compare
PIXEL_CHANGE = 25  # grey levels: more than a camera's noise


class MotionGate:
    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._reference: npt.NDArray[np.uint8] | None = None  # the last detected frame, small and grey
        self._detected_at = float("-inf")

    def needs_detection(self, image: Image, timestamp: float, *, force: bool = False) -> bool:
        """Whether to run the detector on this frame (`force`: whatever moved). A frame that gets
        it becomes the reference for the next ones."""
        small = _small_grey(image)
        reference = self._reference
        stale = timestamp - self._detected_at >= self.config.max_interval_s
        due = force or stale or reference is None or reference.shape != small.shape
        if not due and reference is not None:
            changed = np.count_nonzero(cv2.absdiff(small, reference) > PIXEL_CHANGE) / small.size
            due = bool(changed >= self.config.min_changed)
        if due:
            self._reference, self._detected_at = small, timestamp
        return due


def _small_grey(image: Image) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    size = (WIDTH, max(1, round(height * WIDTH / width)))
    small = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.GaussianBlur(small, (5, 5), 0), dtype=np.uint8)
