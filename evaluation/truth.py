"""The figures the appliance reports (people, people in violation, violation episodes), derived
from the ground truth by the appliance's own rules, and scored against what it reported."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from appliance.config.model import DistancingConfig
from appliance.runtime.analysis.violations import EpisodeTracker, close_pairs, people_involved
from appliance.runtime.types import Box, ViolationEpisode
from evaluation import GroundTruthBox, fit_floor_homography, iou_matrix, outside_dont_care

Point = tuple[float, float]


@dataclass(frozen=True)
class FrameReport:
    """What the appliance reported for one frame."""

    people: dict[int, Box]  # track id -> box
    in_violation: frozenset[int]  # track ids reported in violation

    def counted(self, truth: Sequence[GroundTruthBox]) -> tuple[int, int]:
        """People and people in violation, leaving out anyone on a flag-0 ("don't care") box of
        the frame's ground truth, as the tracking score does (MOTChallenge's rule): the ground
        truth does not count them either way."""
        kept = {track_id for track_id, _ in outside_dont_care(list(self.people.items()), truth)}
        return len(kept), len(kept & self.in_violation)


@dataclass(frozen=True)
class ReportedEpisode:
    pair: tuple[int, int]  # track ids
    start: float
    end: float


@dataclass(frozen=True)
class TruthFigures:
    people: dict[int, int]  # frame -> people (flag-1 boxes)
    in_violation: dict[int, int]  # frame -> people closer than the threshold to someone
    episodes: list[ViolationEpisode]  # pairs of ground-truth ids


def calibration_points(truth: dict[int, list[GroundTruthBox]]) -> list[tuple[Point, Point]]:
    """(image, floor cm) points spread over where people walked in the first half of the frames,
    the floor positions through the homography fitted there: the calibration is that fit."""
    frames = [truth[n] for n in sorted(truth)]
    first_half = frames[: len(frames) // 2]
    homography = fit_floor_homography(first_half)
    feet = np.array([((b.box[0] + b.box[2]) / 2, b.box[3]) for boxes in first_half for b in boxes if b.counts])
    low, high = np.percentile(feet, 5, axis=0), np.percentile(feet, 95, axis=0)
    middle = (low + high) / 2
    image: list[Point] = [(low[0], low[1]), (high[0], low[1]), (high[0], high[1]), (low[0], high[1]),
                          (middle[0], middle[1])]  # fmt: skip
    floor = homography.to_floor(image)
    return [((float(x), float(y)), (float(fx), float(fy))) for (x, y), (fx, fy) in zip(image, floor, strict=True)]


def truth_figures(truth: dict[int, list[GroundTruthBox]], distancing: DistancingConfig, fps: float) -> TruthFigures:
    """People, people in violation per frame and violation episodes of the ground truth, by the
    appliance's rules (threshold, hysteresis, minimum duration, gap) on the true floor positions;
    frame k is at video time (k - 1) / fps."""
    episodes = EpisodeTracker("truth", distancing)
    people, in_violation, ended = {}, {}, []
    for number in range(1, max(truth) + 1):
        counted = [b for b in truth.get(number, []) if b.counts]
        distances = {}
        for i, a in enumerate(counted):
            for b in counted[i + 1 :]:
                pair = (min(a.track_id, b.track_id), max(a.track_id, b.track_id))
                distances[pair] = 100 * float(np.hypot(a.floor[0] - b.floor[0], a.floor[1] - b.floor[1]))
        people[number] = len(counted)
        in_violation[number] = len(people_involved(close_pairs(distances, distancing.threshold_cm)))
        ended += episodes.update((number - 1) / fps, distances).ended
    return TruthFigures(people, in_violation, ended + episodes.finish())


def identity_map(reported: dict[int, FrameReport], truth: dict[int, list[GroundTruthBox]]) -> dict[int, int]:
    """Each track id -> the ground-truth id it overlaps (IoU >= 0.5) in most frames."""
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for number, frame in reported.items():
        boxes = [b for b in truth.get(number, []) if b.counts]
        if not frame.people or not boxes:
            continue
        ids = list(frame.people)
        ious = iou_matrix(np.array([frame.people[i] for i in ids]), np.array([b.box for b in boxes]))
        for row, track_id in enumerate(ids):
            best = int(np.argmax(ious[row]))
            if ious[row, best] >= 0.5:
                votes[track_id][boxes[best].track_id] += 1
    return {track_id: counter.most_common(1)[0][0] for track_id, counter in votes.items()}


def episode_scores(
    reported: Sequence[ReportedEpisode], truth: Sequence[ViolationEpisode], identities: dict[int, int]
) -> tuple[float, float, float]:
    """Precision, recall and F1, one to one: a reported episode matches a ground-truth episode of
    the same two people (track ids mapped by `identities`) whose time overlaps it by at least half
    of the shorter of the two."""
    unmatched = list(truth)
    hits = 0
    for episode in reported:
        mapped = tuple(sorted(identities.get(i, -1) for i in episode.pair))
        for candidate in unmatched:
            end = candidate.end if candidate.end is not None else episode.end
            overlap = min(episode.end, end) - max(episode.start, candidate.start)
            if tuple(sorted(candidate.pair)) == mapped and overlap >= min(episode.end - episode.start,
                                                                          end - candidate.start) / 2:  # fmt: skip
                unmatched.remove(candidate)
                hits += 1
                break
    precision = hits / len(reported) if reported else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def per_frame_errors(reported: Sequence[int], true: Sequence[int]) -> tuple[float, float]:
    """Mean absolute error and the share of frames exactly right."""
    errors = np.abs(np.asarray(reported) - np.asarray(true))
    return float(errors.mean()), float((errors == 0).mean())
