"""ByteTrack's association (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every
Detection Box", ECCV 2022) on this project's Kalman filter, the default tracker.

A person the detector sees only weakly (partly hidden, blurred, small) still scores something:
instead of dropping every detection under the operating threshold, the tracker keeps those down
to `tracker.low_score` and uses them, in a second stage, only to continue people it was already
following. New people start from confident detections alone, so weak boxes never add anyone.
In each frame:

1. confirmed tracks, including ones lost for up to `max_lost_s` seconds, take the confident
   detections (score >= the detector's `min_score`), by IoU with their predicted boxes;
2. confirmed tracks seen in the previous frame and still unmatched take the weak detections, by
   IoU of at least 0.5 (a weak box must sit where the person is expected);
3. confirmed tracks still unmatched take what is left of the confident detections by IoU of at
   least 0.5 with where they were last seen rather than where the filter predicts them (OC-SORT's
   observation-centric recovery, Cao et al., CVPR 2023): a person who stopped while hidden;
4. tentative tracks take what is left of the confident detections;
5. confident detections still unmatched start tentative tracks, confirmed after `min_hits`
   detections in a row; a tentative track missed once is dropped.

A track found again after a gap takes its velocity from the observations around the gap (the
Kalman tracker's observation-centric re-update).

Confirmation counts detections, deletion counts seconds: a person hidden for a second is kept at
5 fps as at 30, and a tentative track needs the same evidence at any frame rate.

Written here rather than taken from a library. `supervision` 0.31 (MIT) would pull in
matplotlib, PyAV, Pillow and requests for one class. Norfair 2.3 (BSD-3) pulls in matplotlib,
filterpy and rich, needs numpy < 2, and has no score-split association. Written here, it reuses
the batched Kalman filter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from appliance.config.model import TrackerConfig
from appliance.runtime.tracking.base import box_iou
from appliance.runtime.tracking.kalman import Array, KalmanTracker
from appliance.runtime.types import Detection, Track

WEAK_MATCH_IOU = 0.5
RECOVERY_IOU = 0.5


class ByteTracker(KalmanTracker):
    def __init__(self, config: TrackerConfig, min_score: float) -> None:
        super().__init__(config)
        self.min_score = min_score  # the detector's operating threshold: confident above it

    def configure(self, config: TrackerConfig, min_score: float) -> None:
        super().configure(config, min_score)
        self.min_score = min_score

    def update(self, detections: Sequence[Detection], timestamp: float) -> list[Track]:
        confident = [i for i, d in enumerate(detections) if d.score >= self.min_score]
        weak = [i for i, d in enumerate(detections) if self.config.low_score <= d.score < self.min_score]
        self._forget_lost(timestamp)
        predicted = self._predict(timestamp)
        confirmed = [row for row, track in enumerate(self.tracks) if track.confirmed]
        tentative = [row for row, track in enumerate(self.tracks) if not track.confirmed]
        threshold = self.config.iou_threshold
        first, unmatched_rows, confident = _match(predicted, confirmed, detections, confident, threshold)
        recent = [row for row in unmatched_rows if self.tracks[row].missed == 0]
        second, _, _ = _match(predicted, recent, detections, weak, WEAK_MATCH_IOU)
        taken = {row for row, _ in second}
        last_seen = np.array([track.box for track in self.tracks], dtype=np.float64).reshape(-1, 4)
        unmatched_rows = [row for row in unmatched_rows if row not in taken]
        third, _, confident = _match(last_seen, unmatched_rows, detections, confident, RECOVERY_IOU)
        fourth, _, confident = _match(predicted, tentative, detections, confident, threshold)
        return self._finish(first + second + third + fourth, detections, confident, timestamp)


def _match(
    predicted: Array, rows: list[int], detections: Sequence[Detection], columns: list[int], threshold: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Matches (track row, detection index) between `rows` and `columns` maximising total IoU,
    each at least `threshold`; then the rows and columns left unmatched."""
    if not rows or not columns:
        return [], rows, columns
    ious = box_iou(predicted[rows], [detections[c].box for c in columns])
    picked_rows, picked_columns = linear_sum_assignment(-ious)
    matches = [
        (rows[r], columns[c]) for r, c in zip(picked_rows, picked_columns, strict=True) if ious[r, c] >= threshold
    ]
    matched_rows, matched_columns = {r for r, _ in matches}, {c for _, c in matches}
    return matches, [r for r in rows if r not in matched_rows], [c for c in columns if c not in matched_columns]
