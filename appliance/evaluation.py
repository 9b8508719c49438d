"""Detection quality against MOTChallenge ground truth: precision, recall and AP at an IoU.

Used by the tests and the benchmarks; flag-0 ground-truth boxes are "don't care"."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from appliance.runtime.types import Box, Detection


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
