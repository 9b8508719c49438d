"""Tracking, distance and analysis-cost benchmark on the MOT sequences with ground truth.

    .venv/bin/python bench/analysis.py

Tracking: MOTA, IDF1 and identity switches (py-motmetrics, IoU 0.5) of every tracker fed the
ground-truth boxes, the default profile's detections (person-detection-retail-0013 at its
operating threshold 0.45) and YOLOv8n ONNX detections (score >= 0.5); bytetrack also gets the
detections from `tracker.low_score` (0.1) up. Distance: the homography is
fitted on the first half of each sequence's ground-truth foot points and floor positions, and
every pair of people in the second half is measured; errors are |measured - true| in cm.
Cost: median ms per frame of filtering, tracking, distances and episodes on ground-truth boxes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from appliance.config import load_profile
from appliance.config.model import DetectorConfig
from appliance.runtime.analysis.analyzer import CameraAnalyzer
from appliance.runtime.analysis.distance import CalibratedDistance, CenterPointsDistance, FourCornersDistance
from appliance.runtime.detectors import create_detector
from appliance.runtime.tracking import create_tracker
from appliance.runtime.types import Detection
from evaluation import (
    distance_errors,
    fit_floor_homography,
    load_mot_ground_truth,
    score_tracking,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt", 7.0),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt", 25.0),
}
PROFILE = load_profile(REPO / "profiles" / "base.yaml").profile


def detections_of(video: Path, detector: DetectorConfig) -> list[list[Detection]]:
    """Every frame's detections from `low_score` up; the trackers take what they use."""
    detector_ = create_detector(replace(detector, min_score=PROFILE.tracker.low_score, threads=2))
    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(detector_.detect(image))


def yolov8n() -> DetectorConfig:
    model = replace(PROFILE.detector.model, path=str(DATA / "models/yolov8n_onnx/yolov8n.onnx"))
    return replace(PROFILE.detector, backend="onnxruntime", model=model, min_score=0.5)


def tracking_rows(sequence: str) -> list[str]:
    video, gt, fps = SEQUENCES[sequence]
    truth = load_mot_ground_truth(DATA / gt)
    count = max(truth)
    default = load_profile(REPO / "profiles" / "x86.yaml").profile.detector
    inputs = {  # name: (detections, operating threshold)
        "ground-truth boxes": (
            [[Detection(b.box, 1.0, 0) for b in truth.get(n, [])] for n in range(1, count + 1)],
            0.5,
        ),
        "default detector": (detections_of(DATA / video, default)[:count], default.min_score),
        "YOLOv8n detections": (detections_of(DATA / video, yolov8n())[:count], 0.5),
    }
    rows = []
    for source, (detections, min_score) in inputs.items():
        for algorithm in ("kalman", "bytetrack", "iou"):
            tracker = create_tracker(replace(PROFILE.tracker, algorithm=algorithm), min_score)
            floor = PROFILE.tracker.low_score if algorithm == "bytetrack" else min_score
            frames = []
            for number, frame_detections in enumerate(detections, start=1):
                tracks = tracker.update([d for d in frame_detections if d.score >= floor], number / fps)
                frames.append(([(t.track_id, t.box) for t in tracks], truth.get(number, [])))
            score = score_tracking(frames)
            rows.append(
                f"| {sequence} | {source} | {algorithm} | {score.mota:.3f} | {score.idf1:.3f} | {score.id_switches} |"
            )
    return rows


def distance_rows(sequence: str) -> list[str]:
    truth = load_mot_ground_truth(DATA / SEQUENCES[sequence][1])
    frames = [truth[n] for n in sorted(truth)]
    fit, check = frames[: len(frames) // 2], frames[len(frames) // 2 :]
    homography = fit_floor_homography(fit)
    rows = []
    methods = {
        "calibrated": CalibratedDistance(homography),
        "center_points": CenterPointsDistance(PROFILE.distancing.person_height_cm),
        "four_corners": FourCornersDistance(PROFILE.distancing.person_height_cm),
    }
    for name, method in methods.items():
        errors = distance_errors(method, check)
        rows.append(
            f"| {sequence} | {name} | {len(errors)} | {np.median(errors):.1f} | {np.percentile(errors, 95):.1f} | "
            f"{homography.reprojection_error_cm:.1f} |"
        )
    return rows


def cost_row(sequence: str) -> str:
    _, gt, fps = SEQUENCES[sequence]
    truth = load_mot_ground_truth(DATA / gt)
    camera = replace(load_profile(REPO / "profiles" / "x86.yaml").profile.cameras[0], roi=None)
    profile = replace(PROFILE, cameras=(camera,))
    analyzer = CameraAnalyzer(profile, camera.id)
    timings = []
    for number in range(1, max(truth) + 1):
        detections = [Detection(b.box, 1.0, 0) for b in truth.get(number, [])]
        started = time.perf_counter()
        analyzer.process(number / fps, detections)
        timings.append((time.perf_counter() - started) * 1000)
    people = statistics.mean(len(truth.get(n, [])) for n in range(1, max(truth) + 1))
    return f"| {sequence} | {people:.1f} | {statistics.median(timings):.2f} | {max(timings):.2f} |"


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| sequence | input | tracker | MOTA | IDF1 | ID switches |\n|---|---|---|---|---|---|")
    for sequence in SEQUENCES:
        print("\n".join(tracking_rows(sequence)))
    print("\n| sequence | method | pairs | median error cm | p95 error cm | calibration reprojection cm |")
    print("|---|---|---|---|---|---|")
    for sequence in SEQUENCES:
        print("\n".join(distance_rows(sequence)))
    print("\n| sequence | people per frame | analysis ms per frame (median) | max ms |\n|---|---|---|---|")
    for sequence in SEQUENCES:
        print(cost_row(sequence))
    return 0


if __name__ == "__main__":
    sys.exit(main())
