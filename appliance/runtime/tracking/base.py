"""The tracker interface and the pieces both trackers share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from appliance.config.model import TrackerConfig
from appliance.runtime.types import Box, Detection, Track


class Tracker(ABC):
    """Turns each frame's detections into people with ids that stay stable across frames."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._next_id = 1

    def configure(self, config: TrackerConfig, min_score: float) -> None:
        """New settings of the same algorithm, from the next update on; people followed are kept.
        `min_score` is the detector's operating threshold (ByteTracker uses it)."""
        self.config = config

    def continue_ids(self, previous: Tracker) -> None:
        """Number new people after `previous`'s, so that no id is used twice in a run."""
        self._next_id = max(self._next_id, previous._next_id)

    def new_id(self) -> int:
        track_id, self._next_id = self._next_id, self._next_id + 1
        return track_id

    @abstractmethod
    def update(self, detections: Sequence[Detection], timestamp: float) -> list[Track]:
        """Advance one frame, taken at `timestamp` (seconds); return the confirmed people
        detected in it (lost ones are not)."""

    @abstractmethod
    def possible_people(self) -> list[Box]:
        """Every box where a person may be after the last update: confirmed and tentative tracks,
        and lost ones both where they were last seen and where they are predicted now. Privacy
        hides all of them; counting uses only what `update` returns."""

    def expired(self, last_seen: float, timestamp: float) -> bool:
        """Whether a person unseen since `last_seen` has been lost too long to keep."""
        return timestamp - last_seen > self.config.max_lost_s


BoxRows = Sequence[Box] | npt.NDArray[np.float64]


def box_iou(a: BoxRows, b: BoxRows) -> npt.NDArray[np.float64]:
    """IoU of every box in `a` with every box in `b`."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(first[:, 2:] - first[:, :2], axis=1)
    area_b = np.prod(second[:, 2:] - second[:, :2], axis=1)
    return cast(npt.NDArray[np.float64], overlap / np.maximum(area_a[:, None] + area_b[None, :] - overlap, 1e-9))
