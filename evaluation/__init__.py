"""Quality against MOTChallenge ground truth: detection precision, recall and AP; tracking
MOTA and IDF1; distance errors against the ground-plane positions.

Used by the tests and the benchmarks, and not shipped: the appliance's package is `appliance/`
alone. Flag-0 ground-truth boxes are "don't care"."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from appliance.geometry import Homography, fit_homography
from appliance.runtime.analysis.distance import DistanceMethod
from appliance.runtime.types import Box, Detection, Track


@dataclass(frozen=True, slots=True)
class GroundTruthBox:
    track_id: int
    box: Box  # x1, y1, x2, y2 in frame pixels
    counts: bool  # flag 1; flag-0 boxes are neither hits nor misses
    floor: tuple[float, float]  # world position on the ground plane, metres


def load_mot_ground_truth(path: Path) -> dict[int, list[GroundTruthBox]]:
    """gt.txt rows `frame, id, left, top, width, height, flag, x, y, z` by 1-based frame."""
    frames: dict[int, list[GroundTruthBox]] = defaultdict(list)
    with path.open(newline="") as stream:
        for row in csv.reader(stream):
            frame, track, left, top, width, height, flag, x, y = (float(v) for v in row[:9])
            box = (left, top, left + width, top + height)
            frames[int(frame)].append(GroundTruthBox(int(track), box, flag == 1, (x, y)))
    return dict(frames)


def iou_matrix(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """IoU of every box in `a` with every box in `b` (x1, y1, x2, y2 rows)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1e-9), 0.0)


@dataclass
class DetectionScore:
    """Accumulates matches over frames."""

    iou_threshold: float = 0.5
    ground_truth: int = 0
    scored: list[tuple[float, bool]] = field(default_factory=list)  # (score, true positive)

    def add_frame(self, detections: Sequence[Detection], truth: Sequence[GroundTruthBox]) -> None:
        """Greedy matching, best score first, to the unmatched box of highest IoU."""
        self.ground_truth += sum(t.counts for t in truth)
        if not detections:
            return
        ordered = sorted(detections, key=lambda d: -d.score)
        boxes = np.array([d.box for d in ordered], dtype=np.float64)
        truth_boxes = np.array([t.box for t in truth], dtype=np.float64).reshape(-1, 4)
        ious = iou_matrix(boxes, truth_boxes)
        counts = np.array([t.counts for t in truth], dtype=bool)
        taken = np.zeros(len(truth), dtype=bool)
        for index, detection in enumerate(ordered):
            candidates = np.where(~taken & (ious[index] >= self.iou_threshold))[0]
            if len(candidates) == 0:
                self.scored.append((detection.score, False))
                continue
            best = candidates[np.argmax(ious[index, candidates])]
            taken[best] = True
            if counts[best]:
                self.scored.append((detection.score, True))

    def precision_recall(self, min_score: float = 0.0) -> tuple[float, float]:
        kept = [hit for score, hit in self.scored if score >= min_score]
        hits = sum(kept)
        return (hits / len(kept) if kept else 0.0), (hits / self.ground_truth if self.ground_truth else 0.0)

    def f1(self, min_score: float) -> float:
        precision, recall = self.precision_recall(min_score)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def best_f1(self, thresholds: Iterable[float]) -> tuple[float, float]:
        """(threshold, F1) of the threshold with the best F1; the lowest such on a tie."""
        best = (0.0, -1.0)
        for threshold in thresholds:
            f1 = self.f1(threshold)
            if f1 > best[1] + 1e-12:
                best = (threshold, f1)
        return best

    def merged(self, other: DetectionScore) -> DetectionScore:
        """Both scores pooled, as if one sequence."""
        return DetectionScore(self.iou_threshold, self.ground_truth + other.ground_truth, self.scored + other.scored)

    def average_precision(self) -> float:
        """Area under the interpolated precision-recall curve (all points, as in VOC 2010+)."""
        if not self.ground_truth or not self.scored:
            return 0.0
        hits = np.array([hit for _, hit in sorted(self.scored, key=lambda s: -s[0])], dtype=np.float64)
        true_positives = np.cumsum(hits)
        recall = true_positives / self.ground_truth
        precision = true_positives / np.arange(1, len(hits) + 1)
        recall = np.concatenate([[0.0], recall, [recall[-1]]])
        precision = np.concatenate([[1.0], precision, [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def score_frames(
    results: Iterable[tuple[Sequence[Detection], Sequence[GroundTruthBox]]],
    iou_threshold: float = 0.5,
) -> DetectionScore:
    score = DetectionScore(iou_threshold)
    for detections, truth in results:
        score.add_frame(detections, truth)
    return score


@dataclass(frozen=True)
class TrackingScore:
    mota: float
    idf1: float
    id_switches: int


def score_tracking(
    frames: Iterable[tuple[Sequence[tuple[int, Box]], Sequence[GroundTruthBox]]],
) -> TrackingScore:
    """CLEAR-MOT and identity metrics (py-motmetrics) of (track id, box) lists against flag-1
    ground truth, matched at IoU 0.5. A track on a flag-0 ("don't care") box is left out, as
    MOTChallenge's evaluation does, rather than counted as a false positive."""
    import motmetrics  # a test and benchmark dependency, not a runtime one

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for all_tracks, truth in frames:
        tracks = outside_dont_care(all_tracks, truth)
        counted = [t for t in truth if t.counts]
        truth_boxes = np.array([t.box for t in counted], dtype=np.float64).reshape(-1, 4)
        track_boxes = np.array([box for _, box in tracks], dtype=np.float64).reshape(-1, 4)
        distances = 1 - iou_matrix(truth_boxes, track_boxes)
        distances[distances > 0.5] = np.nan
        accumulator.update([t.track_id for t in counted], [track_id for track_id, _ in tracks], distances)
    summary = motmetrics.metrics.create().compute(accumulator, metrics=["mota", "idf1", "num_switches"])
    row = summary.iloc[0]
    return TrackingScore(float(row["mota"]), float(row["idf1"]), int(row["num_switches"]))


def outside_dont_care(tracks: Sequence[tuple[int, Box]], truth: Sequence[GroundTruthBox]) -> Sequence[tuple[int, Box]]:
    """The tracks that do not overlap a flag-0 box at IoU 0.5 or more."""
    ignored = np.array([t.box for t in truth if not t.counts], dtype=np.float64).reshape(-1, 4)
    if not len(ignored) or not tracks:
        return tracks
    overlaps = iou_matrix(np.array([box for _, box in tracks], dtype=np.float64), ignored)
    return [track for track, overlap in zip(tracks, overlaps.max(axis=1), strict=True) if overlap < 0.5]


def ground_truth_tracks(truth: Sequence[GroundTruthBox]) -> list[Track]:
    """Ground-truth boxes as tracked people (the 'ideal detector and tracker')."""
    return [Track(t.track_id, t.box, 1.0, 1) for t in truth if t.counts]


def fit_floor_homography(frames: Iterable[Sequence[GroundTruthBox]]) -> Homography:
    """Calibration from ground truth: foot points (bottom centres) to floor positions in cm."""
    pairs: dict[tuple[float, float], tuple[float, float]] = {}  # floor -> image; people standing still repeat
    for truth in frames:
        for box in truth:
            if box.counts:
                pairs.setdefault((box.floor[0] * 100, box.floor[1] * 100), ((box.box[0] + box.box[2]) / 2, box.box[3]))
    return fit_homography(list(pairs.values()), list(pairs))


def distance_errors(method: DistanceMethod, frames: Iterable[Sequence[GroundTruthBox]]) -> npt.NDArray[np.float64]:
    """|measured - true floor distance| in cm for every pair of people in every frame."""
    errors: list[float] = []
    for truth in frames:
        tracks = ground_truth_tracks(truth)
        if len(tracks) < 2:
            continue
        measured = method.matrix(tracks)
        floors = np.array([t.floor for t in truth if t.counts]) * 100
        actual = np.linalg.norm(floors[:, None, :] - floors[None, :, :], axis=2)
        rows, columns = np.triu_indices(len(tracks), k=1)
        errors.extend(np.abs(measured[rows, columns] - actual[rows, columns]))
    return np.array(errors)
