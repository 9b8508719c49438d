"""End-to-end truth: what the appliance reports, against the same figures from the ground truth.

    .venv/bin/python bench/truth.py [--profile profiles/x86.yaml] [--detector NAME ...]

For each kit sequence the real runtime runs in historical mode (`appliance run --input`) on a
profile extending the shipped one, with one camera calibrated from the ground truth: a floor
homography fitted on the foot points and floor positions of the first half of the sequence (as
bench/analysis.py does), written as calibration points. Every frame is sampled into the event
log; the benchmark reads what the appliance reported there and compares it with the ground
truth's own figures, computed with the same threshold, hysteresis, minimum duration and gap by
the appliance's own episode logic on the true floor positions:

- people per frame: mean absolute error and the share of frames exactly right. A reported person
  on one of the ground truth's flag-0 ("don't care") boxes counts on neither side, as in the
  tracking score (MOTChallenge's rule);
- people in violation per frame: the same;
- violation episodes: precision, recall and F1. A reported episode matches a ground-truth episode
  of the same two people (each track id mapped to the ground-truth id it overlaps most often at
  IoU 0.5) when their times overlap by at least half of the shorter one.

Frame k of the ground truth is the k-th decoded frame; times are video times at the container's
frame rate, for both sides. `--detector` swaps in another CPU backend's model from the kit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

from appliance.config import load_profile
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

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt"),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt"),
}
DETECTORS = {  # --detector NAME: the detector section replacing the shipped profile's
    "hog": "{backend: opencv, model: {path: null, sha256: null, architecture: auto}, input_size: [1152, 864], "
    "class_id: 0, min_score: 0.0, device: auto}",  # the default profile's detector before issue 11
    "yolox-nano": "{backend: onnxruntime, model: {path: %s, sha256: null, architecture: yolox}, class_id: 0, "
    "min_score: 0.6, device: auto}" % (DATA / "models/yolox_nano_onnx/yolox_nano.onnx"),
    "ssd-mobilenet": "{backend: tflite, model: {path: %s, sha256: null, architecture: auto}, class_id: 0, "
    "min_score: 0.5, device: auto}" % (DATA / "models/ssd_mobilenet_v1_coco_quant/detect.tflite"),
    "yolov8n": "{backend: onnxruntime, model: {path: %s, sha256: null, architecture: auto}, class_id: 0, "
    "min_score: 0.4, device: auto}" % (DATA / "models/yolov8n_onnx/yolov8n.onnx"),
}  # each model's min_score: its best-F1 threshold in bench/detect.py (the rule in docs/detectors.md)


def run_appliance(
    profile: Path, sequence: str, detector: str | None, tracker: str | None, folder: Path
) -> tuple[dict[int, FrameReport], list[ReportedEpisode]]:
    """Run the appliance on the sequence; what it reported per frame (1-based) and its episodes."""
    video, gt = SEQUENCES[sequence]
    points = calibration_points(load_mot_ground_truth(DATA / gt))
    tag = f"{sequence}-{detector or 'default'}-{tracker or 'default'}"
    site = folder / f"{tag}.yaml"
    site.write_text(
        f"extends: {profile.resolve()}\n"
        + (f"detector: {DETECTORS[detector]}\n" if detector else "")
        + (f"tracker: {{algorithm: {tracker}}}\n" if tracker else "")
        + f"cameras:\n  - id: cam\n    source: {DATA / video}\n"
        "    distance:\n      method: calibrated\n      calibration:\n"
        + "".join(
            f"        - {{image: [{x:.1f}, {y:.1f}], floor: [{fx:.1f}, {fy:.1f}]}}\n" for (x, y), (fx, fy) in points
        )
        + "areas: [{id: all, cameras: [cam], occupancy_threshold: 100}]\n"
        f"storage: {{data_dir: {folder / tag}, event_log: {{sample_interval_s: 0}}}}\n"
        "metrics: {enabled: false}\nmqtt: {enabled: false}\napi: {enabled: false}\nota: {enabled: false}\n"
        "logging: {level: warning}\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "appliance", "run", "--profile", str(site), "--input", str(DATA / video)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"appliance run failed on {sequence}:\n{run.stderr}")
    frames: dict[int, FrameReport] = {}
    episodes = []
    for line in next((folder / tag / "events" / "cam").glob("*.jsonl")).read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "detections":
            people = {p["id"]: tuple(p["box"]) for p in record["people"]}
            violating = frozenset(p["id"] for p in record["people"] if p["violation"])
            frames[record["frame"] + 1] = FrameReport(people, violating)
        elif record["type"] == "episode" and record["state"] == "ended":
            episodes.append(ReportedEpisode(tuple(record["pair"]), record["start"], record["end"]))
    return frames, episodes


def row(sequence: str, name: str, profile: Path, detector: str | None, tracker: str | None, folder: Path) -> str:
    video, gt = SEQUENCES[sequence]
    fps = cv2.VideoCapture(str(DATA / video)).get(cv2.CAP_PROP_FPS)
    reported, episodes = run_appliance(profile, sequence, detector, tracker, folder)
    truth = load_mot_ground_truth(DATA / gt)
    expected = truth_figures(truth, load_profile(profile).profile.distancing, fps)
    numbers = range(1, max(truth) + 1)
    empty = FrameReport({}, frozenset())
    counted = [reported.get(n, empty).counted(truth.get(n, [])) for n in numbers]
    people = per_frame_errors([c[0] for c in counted], [expected.people[n] for n in numbers])
    violation = per_frame_errors([c[1] for c in counted], [expected.in_violation[n] for n in numbers])
    precision, recall, f1 = episode_scores(episodes, expected.episodes, identity_map(reported, truth))
    return (
        f"| {sequence} | {name} | {people[0]:.2f} | {people[1]:.2f} | {violation[0]:.2f} | {violation[1]:.2f} | "
        f"{len(episodes)} / {len(expected.episodes)} | {precision:.2f} / {recall:.2f} / {f1:.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "x86.yaml", help="the profile to extend")
    parser.add_argument("--detector", nargs="*", choices=list(DETECTORS), default=[],
                        help="also run these kit models in place of the profile's detector")  # fmt: skip
    parser.add_argument("--tracker", choices=["bytetrack", "kalman", "iou"], help="tracker.algorithm to use")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| sequence | detector | people/frame MAE | exact | in violation/frame MAE | exact | episodes reported / "
          "true | episode P / R / F1 |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for sequence in SEQUENCES:
            for detector in [None, *args.detector]:
                name = f"{detector or args.profile.name}, {args.tracker or 'its tracker'}"
                print(row(sequence, name, args.profile, detector, args.tracker, Path(folder)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
