"""The default tracker: a constant-velocity Kalman filter per person predicts where each box
moves, and the Hungarian algorithm (scipy's linear_sum_assignment) matches predictions to
detections by IoU, globally rather than greedily.

Every track's filter is advanced in one batch of array operations (states of N x 8, covariances
of N x 8 x 8), so a crowded frame costs a few numpy calls rather than a few per person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from appliance.config.model import TrackerConfig
from appliance.runtime.tracking.base import Tracker, box_iou
from appliance.runtime.types import Box, Detection, Track

Array = npt.NDArray[np.float64]
# Noise relative to the box height, as in DeepSORT: position 1/20 per frame. The velocity's is
# in proportion to the time between frames (at 25 fps a person's velocity changes less from one
# frame to the next than at 7 fps): 0.11 box heights a second, chosen by the rule in
# docs/analysis.md. The filter starts with a velocity spread of 10/160 per frame, as DeepSORT.
POSITION_NOISE, VELOCITY_NOISE = 1 / 20, 1 / 160
VELOCITY_NOISE_PER_S = 0.11
FRAME_INTERVAL_S = (0.01, 1.0)  # the interval the noise is scaled by is kept within these
INITIAL_SPREAD = np.array([2 * POSITION_NOISE] * 4 + [10 * VELOCITY_NOISE] * 4)
TRANSITION = np.eye(8) + np.eye(8, k=4)  # state: cx, cy, w, h and their velocities; measured: the first 4


@dataclass
class TrackInfo:
    """What the tracker knows of a person besides the filter state."""

    track_id: int
    box: Box
    score: float
    last_seen: float
    hits: int = 1
    missed: int = 0
    confirmed: bool = False


class KalmanTracker(Tracker):
    def __init__(self, config: TrackerConfig) -> None:
        super().__init__(config)
        self.tracks: list[TrackInfo] = []
        self.states: Array = np.zeros((0, 8))
        self.covariances: Array = np.zeros((0, 8, 8))
        self._last_frame: float | None = None

    def update(self, detections: Sequence[Detection], timestamp: float) -> list[Track]:
        self._forget_lost(timestamp)
        predicted = self._predict(timestamp)
        matches, unmatched = self._assign(predicted, detections)
        return self._finish(matches, detections, unmatched, timestamp)

    def _finish(
        self, matches: list[tuple[int, int]], detections: Sequence[Detection], unmatched: list[int], timestamp: float
    ) -> list[Track]:
        """Correct the matched tracks, drop the tentative ones missed, start tracks from the
        `unmatched` detections; the confirmed people seen now."""
        self._correct(matches, detections, timestamp)
        matched_rows = {row for row, _ in matches}
        for row, track in enumerate(self.tracks):
            if row not in matched_rows:
                track.missed += 1
        self._keep([t.confirmed or t.missed == 0 for t in self.tracks])
        self._add([detections[column] for column in unmatched], timestamp)
        reported = []
        for track in self.tracks:
            track.confirmed = track.confirmed or track.hits >= self.config.min_hits
            if track.confirmed and track.missed == 0:
                reported.append(Track(track.track_id, track.box, track.score, track.hits))
        return reported

    def possible_people(self) -> list[Box]:
        estimated: list[Box] = [(float(a), float(b), float(c), float(d)) for a, b, c, d in _xyxy(self.states[:, :4])]
        return estimated + [t.box for t in self.tracks if t.missed > 0]

    def _predict(self, timestamp: float) -> Array:
        """Advance every filter one frame, taken at `timestamp`; the predicted boxes (x1, y1, x2, y2)."""
        interval = timestamp - self._last_frame if self._last_frame is not None else 1 / 7
        self._last_frame = timestamp
        velocity_noise = VELOCITY_NOISE_PER_S * float(np.clip(interval, *FRAME_INTERVAL_S))
        process_noise = np.array([POSITION_NOISE] * 4 + [velocity_noise] * 4)
        noise = (process_noise * self.states[:, 3:4]) ** 2
        self.states = self.states @ TRANSITION.T
        self.states[:, 2:4] = np.maximum(self.states[:, 2:4], 1.0)
        self.covariances = TRANSITION @ self.covariances @ TRANSITION.T + _diagonal(noise)
        return _xyxy(self.states[:, :4])

    def _correct(self, matches: list[tuple[int, int]], detections: Sequence[Detection], timestamp: float) -> None:
        if not matches:
            return
        rows = np.array([row for row, _ in matches])
        measured = _xywh(np.array([detections[column].box for _, column in matches], dtype=np.float64))
        gaps = np.array([self.tracks[row].missed + 1 for row, _ in matches], dtype=np.float64)[:, None]
        last_seen = _xywh(np.array([self.tracks[row].box for row, _ in matches], dtype=np.float64))
        states, covariances = self.states[rows], self.covariances[rows]
        noise = (POSITION_NOISE * states[:, 3:4] * np.ones(4)) ** 2
        innovation_covariance = covariances[:, :4, :4] + _diagonal(noise)
        gain = covariances[:, :, :4] @ np.linalg.inv(innovation_covariance)
        self.states[rows] = states + (gain @ (measured - states[:, :4])[:, :, None])[:, :, 0]
        self.covariances[rows] = covariances - gain @ covariances[:, :4, :]
        # A person found again after a gap: the velocity the filter drifted to while predicting
        # alone is replaced by the one the two observations around the gap give (OC-SORT's
        # observation-centric re-update, Cao et al., CVPR 2023).
        refound = gaps[:, 0] > 1
        self.states[rows[refound], 4:] = ((measured - last_seen) / gaps)[refound]
        for row, column in matches:
            track, detection = self.tracks[row], detections[column]
            track.box, track.score = detection.box, detection.score
            track.hits, track.missed, track.last_seen = track.hits + 1, 0, timestamp

    def _forget_lost(self, timestamp: float) -> None:
        """End the tracks of people unseen for longer than `max_lost_s`, before they can match."""
        self._keep([not self.expired(t.last_seen, timestamp) for t in self.tracks])

    def _keep(self, keep: list[bool]) -> None:
        mask = np.array(keep, dtype=bool)
        self.tracks = [t for t, kept in zip(self.tracks, keep, strict=True) if kept]
        self.states, self.covariances = self.states[mask], self.covariances[mask]

    def _add(self, detections: list[Detection], timestamp: float) -> None:
        if not detections:
            return
        boxes = _xywh(np.array([d.box for d in detections], dtype=np.float64))
        states = np.concatenate([boxes, np.zeros_like(boxes)], axis=1)
        self.states = np.concatenate([self.states, states])
        self.covariances = np.concatenate([self.covariances, _diagonal((INITIAL_SPREAD * states[:, 3:4]) ** 2)])
        self.tracks += [TrackInfo(self.new_id(), d.box, d.score, timestamp) for d in detections]

    def _assign(self, predicted: Array, detections: Sequence[Detection]) -> tuple[list[tuple[int, int]], list[int]]:
        """Matches (track row, detection column) maximising total IoU, each above the threshold."""
        ious = box_iou(predicted, [d.box for d in detections])
        if ious.size == 0:
            return [], list(range(len(detections)))
        rows, columns = linear_sum_assignment(-ious)
        matches = [
            (int(r), int(c)) for r, c in zip(rows, columns, strict=True) if ious[r, c] >= self.config.iou_threshold
        ]
        matched = {c for _, c in matches}
        return matches, [c for c in range(len(detections)) if c not in matched]


def _diagonal(rows: Array) -> Array:
    """A stack of diagonal matrices, one per row of `rows`."""
    return rows[:, :, None] * np.eye(rows.shape[1])


def _xywh(boxes: Array) -> Array:
    """(x1, y1, x2, y2) rows to (cx, cy, w, h)."""
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


def _xyxy(boxes: Array) -> Array:
    """(cx, cy, w, h) rows to (x1, y1, x2, y2)."""
    return np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
