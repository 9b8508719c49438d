"""The default tracker: a constant-velocity Kalman filter per person predicts where each box
moves, and the Hungarian algorithm (scipy's linear_sum_assignment) matches predictions to
detections by IoU, globally rather than greedily."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from appliance.config.model import TrackerConfig
from appliance.runtime.tracking.base import Tracker, box_iou
from appliance.runtime.types import Box, Detection, Track

Vector = npt.NDArray[np.float64]
# Noise relative to the box height, as in DeepSORT: position 1/20, velocity 1/160 per frame.
POSITION_NOISE, VELOCITY_NOISE = 1 / 20, 1 / 160
TRANSITION = np.eye(8) + np.eye(8, k=4)  # state: cx, cy, w, h and their velocities
MEASUREMENT = np.eye(4, 8)


class KalmanTrack:
    """One person's box state (cx, cy, w, h, and velocities) and its uncertainty."""

    def __init__(self, track_id: int, detection: Detection) -> None:
        self.track_id = track_id
        self.state: Vector = np.concatenate([_xywh(detection.box), np.zeros(4)])
        height = self.state[3]
        spread = np.array([2 * POSITION_NOISE] * 4 + [10 * VELOCITY_NOISE] * 4) * height
        self.covariance: Vector = np.diag(spread**2)
        self.box, self.score = detection.box, detection.score
        self.hits, self.missed, self.confirmed = 1, 0, False

    def predict(self) -> Box:
        height = self.state[3]
        noise = np.diag((np.array([POSITION_NOISE] * 4 + [VELOCITY_NOISE] * 4) * height) ** 2)
        self.state = TRANSITION @ self.state
        self.state[2:4] = np.maximum(self.state[2:4], 1.0)
        self.covariance = TRANSITION @ self.covariance @ TRANSITION.T + noise
        return _xyxy(self.state[:4])

    def correct(self, detection: Detection) -> None:
        measurement = _xywh(detection.box)
        noise = np.diag((POSITION_NOISE * self.state[3] * np.ones(4)) ** 2)
        innovation_covariance = MEASUREMENT @ self.covariance @ MEASUREMENT.T + noise
        gain = self.covariance @ MEASUREMENT.T @ np.linalg.inv(innovation_covariance)
        self.state = self.state + gain @ (measurement - MEASUREMENT @ self.state)
        self.covariance = (np.eye(8) - gain @ MEASUREMENT) @ self.covariance
        self.box, self.score = detection.box, detection.score
        self.hits, self.missed = self.hits + 1, 0


class KalmanTracker(Tracker):
    def __init__(self, config: TrackerConfig) -> None:
        super().__init__(config)
        self.tracks: list[KalmanTrack] = []

    def update(self, detections: Sequence[Detection]) -> list[Track]:
        predicted = [track.predict() for track in self.tracks]
        matches, unmatched = self._assign(predicted, detections)
        for row, column in matches:
            self.tracks[row].correct(detections[column])
        matched_rows = {row for row, _ in matches}
        for row, track in enumerate(self.tracks):
            if row not in matched_rows:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= (self.config.max_lost if t.confirmed else 0)]
        self.tracks += [KalmanTrack(self.new_id(), detections[column]) for column in unmatched]
        reported = []
        for track in self.tracks:
            track.confirmed = track.confirmed or track.hits >= self.config.min_hits
            if track.confirmed and track.missed == 0:
                reported.append(Track(track.track_id, track.box, track.score, track.hits))
        return reported

    def _assign(self, predicted: list[Box], detections: Sequence[Detection]) -> tuple[list[tuple[int, int]], list[int]]:
        """Matches (track row, detection column) maximising total IoU, each above the threshold."""
        ious = box_iou(predicted, [d.box for d in detections])
        if ious.size == 0:
            return [], list(range(len(detections)))
        rows, columns = linear_sum_assignment(-ious)
        matches = [(r, c) for r, c in zip(rows, columns, strict=True) if ious[r, c] >= self.config.iou_threshold]
        matched = {c for _, c in matches}
        return matches, [c for c in range(len(detections)) if c not in matched]


def _xywh(box: Box) -> Vector:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


def _xyxy(state: Vector) -> Box:
    cx, cy, w, h = (float(v) for v in state)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
