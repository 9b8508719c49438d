"""The appliance's own analysis fed the ground truth's boxes reports what the ground truth says:
people, people in violation per frame and violation episodes (bench/truth.py does the same end
to end with the real detector). A broken association or a swapped coordinate fails it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from appliance.config import load_profile
from appliance.runtime.analysis.analyzer import CameraAnalyzer
from appliance.runtime.types import Detection
from evaluation import load_mot_ground_truth
from evaluation.truth import (
    FrameReport,
    ReportedEpisode,
    calibration_points,
    episode_scores,
    identity_map,
    per_frame_errors,
    truth_figures,
)

SEQUENCES = {
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt"),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt"),
}


@dataclass(frozen=True)
class Agreement:
    people_mae: float
    violation_exact: float
    episode_f1: float


def agreement(
    data: Path, folder: Path, sequence: str, *, tracker: str = "{algorithm: kalman}", swap_image_xy: bool = False
) -> Agreement:
    video, gt = SEQUENCES[sequence]
    truth = load_mot_ground_truth(data / gt)
    points = calibration_points(truth)
    if swap_image_xy:
        points = [((y, x), floor) for (x, y), floor in points]
    calibration = "".join(f"      - {{image: [{x}, {y}], floor: [{u}, {v}]}}\n" for (x, y), (u, v) in points)
    profile_path = folder / f"{sequence}.yaml"
    profile_path.write_text(
        f"device: {{id: truth}}\ntracker: {tracker}\ncameras:\n  - id: cam\n    source: {data / video}\n"
        f"    distance:\n      method: calibrated\n      calibration:\n{calibration}"
    )
    profile = load_profile(profile_path).profile
    fps = cv2.VideoCapture(str(data / video)).get(cv2.CAP_PROP_FPS)
    analyzer = CameraAnalyzer(profile, "cam")
    reported: dict[int, FrameReport] = {}
    ended = []
    for number in range(1, max(truth) + 1):
        boxes = [Detection(b.box, 1.0, 0) for b in truth.get(number, []) if b.counts]
        analysis = analyzer.process((number - 1) / fps, boxes)
        people = {t.track_id: t.box for t in analysis.tracks}
        reported[number] = FrameReport(people, frozenset(analysis.people_in_violation))
        ended += analysis.episodes_ended
    ended += analyzer.finish()[0]
    expected = truth_figures(truth, profile.distancing, fps)
    numbers = range(1, max(truth) + 1)
    counted = [reported[n].counted(truth.get(n, [])) for n in numbers]
    people, _ = per_frame_errors([c[0] for c in counted], [expected.people[n] for n in numbers])
    _, violation = per_frame_errors([c[1] for c in counted], [expected.in_violation[n] for n in numbers])
    episodes = [ReportedEpisode(e.pair, e.start, e.end or e.start) for e in ended]
    _, _, f1 = episode_scores(episodes, expected.episodes, identity_map(reported, truth))
    return Agreement(people, violation, f1)


@pytest.mark.parametrize("algorithm", ["kalman", "bytetrack"])
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_the_analysis_on_ground_truth_boxes_reports_the_ground_truths_figures(
    data: Path, tmp_path: Path, sequence: str, algorithm: str
) -> None:
    result = agreement(data, tmp_path, sequence, tracker=f"{{algorithm: {algorithm}}}")  # measured: F1 1.0
    assert result.people_mae < 0.2, result
    assert result.violation_exact > 0.85, result
    assert result.episode_f1 > 0.8, result


def test_a_swapped_image_coordinate_shows(data: Path, tmp_path: Path) -> None:
    result = agreement(data, tmp_path, "PETS09-S2L1", swap_image_xy=True)
    assert result.violation_exact < 0.8 or result.episode_f1 < 0.6, result


def test_a_broken_association_shows(data: Path, tmp_path: Path) -> None:
    """A tracker that can match nothing (an IoU of 1 required) loses everyone every frame."""
    result = agreement(data, tmp_path, "PETS09-S2L1", tracker="{algorithm: kalman, iou_threshold: 1.0, min_hits: 1}")
    assert result.episode_f1 < 0.3, result
