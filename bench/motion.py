"""What motion gating costs in accuracy and saves in detector runs, on the kit's sequences.

    .venv/bin/python bench/motion.py

Each sequence is analysed as a camera would: PETS09-S2L1 at its 7 fps, TUD-Stadtmitte at 5 of
its 25 fps (every 5th frame). The default profile's detector (x86.yaml) runs down to score 0.05
on the frames the gate lets through; the others reuse the last detections. Scored on the same
frames against the ground truth: AP50 (IoU 0.5, flag-0 boxes don't care) and IDF1 (the default
tracker, fed what it would take). Every-frame detection first, then each `motion.min_changed` of
the grid with `max_interval_s` 1; the rule that picks the default is in docs/runtime.md.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

import cv2

from appliance.config import load_profile
from appliance.config.model import MotionConfig, Profile
from appliance.runtime.analysis.motion import MotionGate
from appliance.runtime.detectors import create_detector
from appliance.runtime.tracking import create_tracker, detector_config_for, tracking_min_score
from appliance.runtime.types import Detection, Image
from evaluation import DetectionScore, load_mot_ground_truth, score_tracking

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {  # name: (video, ground truth, frame step, frames a second as analysed)
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt", 1, 7.0),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt", 5, 5.0),
}
GRID = (0.001, 0.002, 0.005, 0.01, 0.02)
AP_MIN_SCORE = 0.05
TOLERANCE = 0.02
MIN_SPARED = 0.25


def frames_of(video: Path, step: int) -> list[tuple[int, Image]]:
    """(frame number from 1, image) of every `step`-th frame."""
    capture, frames, number = cv2.VideoCapture(str(video)), [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        number += 1
        if (number - 1) % step == 0:
            frames.append((number, image))


def score(
    profile: Profile, sequence: str, detected: list[list[Detection]], frames: list[tuple[int, Image]],
    gate: MotionGate | None,
) -> tuple[float, float, float]:  # fmt: skip
    """AP50, IDF1 and the share of frames the detector ran on, with `gate` (None: every frame)."""
    _, gt, _, fps = SEQUENCES[sequence]
    truth = load_mot_ground_truth(DATA / gt)
    tracker = create_tracker(profile.tracker, profile.detector.min_score)
    floor = tracking_min_score(profile)
    detections: list[Detection] = []
    ran, boxes, tracked = 0, DetectionScore(), []
    for index, ((number, image), fresh) in enumerate(zip(frames, detected, strict=True)):
        timestamp = index / fps
        if gate is None or gate.needs_detection(image, timestamp):
            detections, ran = fresh, ran + 1
        boxes.add_frame(detections, truth.get(number, []))
        tracks = tracker.update([d for d in detections if d.score >= floor], timestamp)
        tracked.append(([(t.track_id, t.box) for t in tracks], truth.get(number, [])))
    return boxes.average_precision(), score_tracking(tracked).idf1, ran / len(frames)


def main() -> int:
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    profile = load_profile(REPO / "profiles" / "x86.yaml").profile
    detector = create_detector(replace(detector_config_for(profile), min_score=AP_MIN_SCORE))
    results: dict[float | None, dict[str, tuple[float, float, float]]] = {}
    for sequence, (video, _, step, _) in SEQUENCES.items():
        print(f"bench: {sequence} ...", file=sys.stderr, flush=True)
        frames = frames_of(DATA / video, step)
        detected = [detector.detect(image) for _, image in frames]  # the detector is deterministic: run it once
        for min_changed in (None, *GRID):
            gate = None if min_changed is None else MotionGate(MotionConfig(True, min_changed, 1.0))
            results.setdefault(min_changed, {})[sequence] = score(profile, sequence, detected, frames, gate)
    detector.close()
    print("| motion.min_changed | " + " | ".join(f"{s} AP50 / IDF1 / detector runs" for s in SEQUENCES) + " |")
    print("|---|" + "---|" * len(SEQUENCES))
    for min_changed, by_sequence in results.items():
        cells = [f"{ap:.3f} / {idf1:.3f} / {ran:.0%}" for ap, idf1, ran in by_sequence.values()]
        print(f"| {'every frame' if min_changed is None else min_changed} | " + " | ".join(cells) + " |")
    print(f"\nThe rule (docs/runtime.md): {choose(results)}")
    return 0


def choose(results: dict[float | None, dict[str, tuple[float, float, float]]]) -> str:
    """The largest min_changed within TOLERANCE of every-frame detection on every sequence, and
    whether it spares the detector at least MIN_SPARED of the frames on every sequence."""
    every = results[None]
    held = [
        value for value in GRID
        if all(abs(results[value][s][0] - every[s][0]) <= TOLERANCE and abs(results[value][s][1] - every[s][1])
               <= TOLERANCE for s in SEQUENCES)
    ]  # fmt: skip
    if not held:
        return "no value of the grid holds accuracy: gating stays off"
    chosen = max(held)
    spared = min(1 - results[chosen][s][2] for s in SEQUENCES)
    verdict = "on by default" if spared >= MIN_SPARED else f"off by default (spares {spared:.0%} < {MIN_SPARED:.0%})"
    return f"min_changed {chosen}; gating {verdict}"


if __name__ == "__main__":
    sys.exit(main())
