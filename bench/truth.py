"""End-to-end truth: what the appliance reports, against the same figures from the ground truth.

    .venv/bin/python bench/truth.py [--profile profiles/x86.yaml] [--detector NAME ...]

For each kit sequence the real runtime runs in historical mode (`appliance run --input`) on a
profile extending the shipped one, with one camera calibrated from the ground truth: a floor
homography fitted on the foot points and floor positions of the first half of the sequence (as
bench/analysis.py does), written as calibration points. Every frame is sampled into the event
log; the benchmark reads what the appliance reported there and compares it with the ground
truth's own figures, computed with the same threshold, hysteresis, minimum duration and gap by
the appliance's own episode logic on the true floor positions:

- people per frame: mean absolute error and the share of frames exactly right;
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
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from appliance.config import load_profile
from appliance.runtime.analysis.violations import EpisodeTracker, close_pairs, people_involved
from appliance.runtime.types import ViolationEpisode
from evaluation import GroundTruthBox, fit_floor_homography, iou_matrix, load_mot_ground_truth

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
    "yolov8n": "{backend: onnxruntime, model: {path: %s, sha256: null, architecture: auto}, class_id: 0, "
    "min_score: 0.5, device: auto}" % (DATA / "models/yolov8n_onnx/yolov8n.onnx"),
}


@dataclass(frozen=True)
class Reported:
    """What the appliance wrote for one frame (1-based, as the ground truth)."""

    people: dict[int, tuple[float, float, float, float]]  # track id -> box
    in_violation: int


def calibration_points(truth: dict[int, list[GroundTruthBox]], frames: list[int]) -> list[str]:
    """Image points spread over where people walked in the first half, with their floor positions
    through the homography fitted there: consistent points, so the calibration is the fit."""
    first_half = [truth[n] for n in frames[: len(frames) // 2]]
    homography = fit_floor_homography(first_half)
    feet = np.array([((b.box[0] + b.box[2]) / 2, b.box[3]) for boxes in first_half for b in boxes if b.counts])
    low, high = np.percentile(feet, 5, axis=0), np.percentile(feet, 95, axis=0)
    image = [(low[0], low[1]), (high[0], low[1]), (high[0], high[1]), (low[0], high[1]), tuple((low + high) / 2)]
    floor = homography.to_floor(image)
    return [
        f"{{image: [{x:.1f}, {y:.1f}], floor: [{fx:.1f}, {fy:.1f}]}}"
        for (x, y), (fx, fy) in zip(image, floor, strict=True)
    ]


EpisodeRecord = dict[str, object]


def run_appliance(
    profile: Path, sequence: str, detector: str | None, tracker: str | None, folder: Path
) -> tuple[dict[int, Reported], list[EpisodeRecord]]:
    video, gt = SEQUENCES[sequence]
    truth = load_mot_ground_truth(DATA / gt)
    points = calibration_points(truth, sorted(truth))
    tag = f"{sequence}-{detector or 'default'}-{tracker or 'default'}"
    site = folder / f"{tag}.yaml"
    site.write_text(
        f"extends: {profile.resolve()}\n"
        + (f"detector: {DETECTORS[detector]}\n" if detector else "")
        + (f"tracker: {{algorithm: {tracker}}}\n" if tracker else "")
        + f"cameras:\n  - id: cam\n    source: {DATA / video}\n"
        "    distance:\n      method: calibrated\n      calibration:\n"
        + "".join(f"        - {point}\n" for point in points)
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
    frames: dict[int, Reported] = {}
    episodes = []
    for line in next((folder / tag / "events" / "cam").glob("*.jsonl")).read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "detections":
            people = {p["id"]: tuple(p["box"]) for p in record["people"]}
            frames[record["frame"] + 1] = Reported(people, sum(p["violation"] for p in record["people"]))
        elif record["type"] == "episode":
            episodes.append(record)
    return frames, episodes


def truth_figures(
    sequence: str, fps: float
) -> tuple[dict[int, list[GroundTruthBox]], dict[int, int], list[ViolationEpisode]]:
    """The ground truth's people, people in violation per frame and episodes, by the appliance's
    own rules (threshold, hysteresis, minimum duration, gap) on the true floor positions."""
    distancing = load_profile(REPO / "profiles" / "base.yaml").profile.distancing
    truth = load_mot_ground_truth(DATA / SEQUENCES[sequence][1])
    episodes = EpisodeTracker("truth", distancing.threshold_cm, hysteresis_cm=distancing.hysteresis_cm,
                              min_duration_s=distancing.min_episode_s, gap_s=distancing.episode_gap_s)  # fmt: skip
    in_violation, ended = {}, []
    for number in range(1, max(truth) + 1):
        people = [b for b in truth.get(number, []) if b.counts]
        distances = {}
        for i, a in enumerate(people):
            for b in people[i + 1 :]:
                pair = (min(a.track_id, b.track_id), max(a.track_id, b.track_id))
                distances[pair] = 100 * float(np.hypot(a.floor[0] - b.floor[0], a.floor[1] - b.floor[1]))
        in_violation[number] = len(people_involved(close_pairs(distances, distancing.threshold_cm)))
        ended += episodes.update((number - 1) / fps, distances).ended
    return truth, in_violation, ended + episodes.finish()


def identity_map(reported: dict[int, Reported], truth: dict[int, list[GroundTruthBox]]) -> dict[int, int]:
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
    reported: list[EpisodeRecord], truth: list[ViolationEpisode], identities: dict[int, int]
) -> tuple[float, float, float]:
    """Precision, recall and F1 of reported episodes against the ground truth's, one to one."""
    unmatched = list(truth)
    hits = 0
    for episode in reported:
        pair = episode["pair"]
        assert isinstance(pair, list)
        mapped = tuple(sorted(identities.get(int(i), -1) for i in pair))
        start, end = float(episode["start"]), float(episode["end"])  # type: ignore[arg-type]
        for candidate in unmatched:
            overlap = min(end, candidate.end or end) - max(start, candidate.start)
            shorter = min(end - start, (candidate.end or end) - candidate.start)
            if tuple(sorted(candidate.pair)) == mapped and overlap >= shorter / 2:
                unmatched.remove(candidate)
                hits += 1
                break
    precision = hits / len(reported) if reported else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def row(sequence: str, name: str, profile: Path, detector: str | None, tracker: str | None, folder: Path) -> str:
    fps = cv2.VideoCapture(str(DATA / SEQUENCES[sequence][0])).get(cv2.CAP_PROP_FPS)
    reported, episodes = run_appliance(profile, sequence, detector, tracker, folder)
    truth, true_violation, true_episodes = truth_figures(sequence, fps)
    numbers = range(1, max(truth) + 1)
    empty = Reported({}, 0)
    people_error = [abs(len(reported.get(n, empty).people) - sum(b.counts for b in truth.get(n, []))) for n in numbers]
    violation_error = [abs(reported.get(n, empty).in_violation - true_violation[n]) for n in numbers]
    ended = [e for e in episodes if e["state"] == "ended"]
    precision, recall, f1 = episode_scores(ended, true_episodes, identity_map(reported, truth))
    return (
        f"| {sequence} | {name} | {np.mean(people_error):.2f} | {np.mean(np.array(people_error) == 0):.2f} | "
        f"{np.mean(violation_error):.2f} | {np.mean(np.array(violation_error) == 0):.2f} | "
        f"{len(ended)} / {len(true_episodes)} | {precision:.2f} / {recall:.2f} / {f1:.2f} |"
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
