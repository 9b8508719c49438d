"""Face masks: verdicts against a known answer, "too small" where faces are too small, and cost.

    .venv/bin/python bench/masks.py [--repeats 3] [--skip-fps]

- The 32-portrait photo (`stills/masked/img4.jpeg`: 4 rows of 8, columns 1, 3, 5, 7 masked and
  2, 4, 6, 8 not): each face the model finds is placed in its grid cell by its centre; masked and
  unmasked precision and recall (target 0.9 each), faces not found, and the same with the
  threshold grid min_score {0.3, 0.5, 0.7}. The drawn `img1.jpeg` (24 people, all masked) is
  printed too, but a drawing says little about cameras.
- PETS09-S2L1 (faces of 5-10 px) and TUD-Stadtmitte (2009 footage: nobody wears a mask) through
  the camera's real analyzer and the mask judge at the profile's settings on every frame: every
  PETS09-S2L1 verdict must be "too small"; TUD-Stadtmitte's "masked" are false.
- FPS: `appliance run --input` on PETS09-S2L1 and TUD-Stadtmitte with the mask stage off and on
  (the face detector in the anonymizer costs nothing there: no image leaves a historical run
  unless asked; its cost per image is printed apart), alternating, medians of the repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from appliance.config import load_profile
from appliance.config.model import Profile
from appliance.runtime.analysis.analyzer import CameraAnalyzer
from appliance.runtime.detectors import create_detector
from appliance.runtime.faces import create_face_detector
from appliance.runtime.faces.masks import MaskJudge, image_verdicts
from appliance.runtime.tracking import detector_config_for
from appliance.runtime.types import Image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
MASK_MODEL = DATA / "models/faces/RFB-640-masked_face-v2.onnx"
PORTRAITS = DATA / "stills/masked/img4.jpeg"
DRAWN = DATA / "stills/masked/img1.jpeg"
SEQUENCES = {
    "PETS09-S2L1": DATA / "sequences/PETS09-S2L1/vtest.avi",
    "TUD-Stadtmitte": DATA / "sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4",
}
SCORES = (0.3, 0.5, 0.7)


def masks_profile(profile: Profile) -> Profile:
    model = replace(profile.masks.model, path=str(MASK_MODEL), architecture="rfb-masked-face")
    return replace(profile, masks=replace(profile.masks, enabled=True, model=model))


def read(path: Path) -> Image:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return np.asarray(image, np.uint8)


def portraits(profile: Profile) -> list[str]:
    image = read(PORTRAITS)
    height, width = image.shape[:2]
    rows = ["| min_score | faces found (of 32) | masked precision | masked recall | unmasked precision | "
            "unmasked recall | too small |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for min_score in SCORES:
        detector = create_face_detector(profile.masks.model, min_score, key="masks.model")
        cells: dict[tuple[int, int], str] = {}
        too_small = 0
        for face, verdict in image_verdicts(detector, image, profile.masks.min_face_px):
            centre_x, centre_y = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
            cell = (int(centre_y * 4 // height), int(centre_x * 8 // width))
            too_small += verdict == "too_small"
            if verdict != "too_small" and cell not in cells:
                cells[cell] = verdict
        truth = {(row, column): "masked" if column % 2 == 0 else "unmasked" for row in range(4) for column in range(8)}
        figures: list[float] = [len(cells)]
        for label in ("masked", "unmasked"):
            said = [cell for cell, verdict in cells.items() if verdict == label]
            right = sum(truth[cell] == label for cell in said)
            figures += [right / len(said) if said else 0.0, right / 16]
        rows.append(
            f"| {min_score} | {figures[0]} | " + " | ".join(f"{f:.2f}" for f in figures[1:]) + f" | {too_small} |"
        )
    drawn = Counter(v for _, v in image_verdicts(create_face_detector(profile.masks.model, profile.masks.min_score,
                                                                     key="masks.model"), read(DRAWN),
                                                profile.masks.min_face_px))  # fmt: skip
    rows.append(f"\n`img1.jpeg` (24 drawn people, all masked), at {profile.masks.min_score}: {dict(drawn)}")
    return rows


def sequences(profile: Profile) -> list[str]:
    rows = ["| sequence | frames | people looked at | masked | unmasked | too small | no face found | ms a look |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, video in SEQUENCES.items():
        detector = create_detector(detector_config_for(profile))
        analyzer = CameraAnalyzer(profile, profile.cameras[0].id)
        judge = MaskJudge(profile.masks, create_face_detector(profile.masks.model, profile.masks.min_score))
        capture = cv2.VideoCapture(str(video))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        verdicts: Counter[str] = Counter()
        frames, looks, seconds = 0, 0, 0.0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            image = np.asarray(frame, np.uint8)
            analysis = analyzer.process(frames / fps, detector.detect(image))
            due = sum(1 for t in analysis.tracks if judge.due(t.track_id, frames / fps))
            started = time.perf_counter()
            verdicts.update(v.verdict for v in judge.judge(image, frames / fps, analysis.tracks))
            seconds += time.perf_counter() - started
            looks += due
            frames += 1
        detector.close()
        judged = sum(verdicts.values())
        rows.append(f"| {name} | {frames} | {looks} | {verdicts['masked']} | {verdicts['unmasked']} | "
                    f"{verdicts['too_small']} | {looks - judged} | {1000 * seconds / max(1, looks):.1f} |")  # fmt: skip
    return rows


def fps_runs(profile_path: Path, repeats: int) -> list[str]:
    folder = Path(tempfile.mkdtemp())
    variants = {"masks off": "", "masks on": f"masks: {{enabled: true, model: {{path: {MASK_MODEL}}}}}\n"}
    results: dict[tuple[str, str], list[float]] = {}
    for repeat in range(repeats):
        for sequence, video in SEQUENCES.items():
            for name, extra in variants.items():
                path = folder / f"{sequence}-{name.replace(' ', '-')}.yaml"
                path.write_text(f"extends: {profile_path.resolve()}\nstorage: {{data_dir: {folder / 'data'}}}\n"
                                "metrics: {enabled: false}\napi: {enabled: false}\nmqtt: {enabled: false}\n"
                                f"areas: []\ncameras:\n  - {{id: lobby, source: {video}}}\n{extra}")  # fmt: skip
                results.setdefault((sequence, name), []).append(run_fps(path, video))
                print(f"  repeat {repeat + 1}: {sequence}, {name}: {results[(sequence, name)][-1]:.1f} fps",
                      file=sys.stderr)  # fmt: skip
    rows = ["| sequence | stage | FPS (median) | runs | ratio to off |", "|---|---|---|---|---|"]
    for (sequence, name), values in results.items():
        off = statistics.median(results[(sequence, "masks off")])
        median = statistics.median(values)
        rows.append(f"| {sequence} | {name} | {median:.1f} | {', '.join(f'{v:.1f}' for v in values)} | "
                    f"{median / off:.2f} |")  # fmt: skip
    return rows


def run_fps(path: Path, video: Path) -> float:
    command = [sys.executable, "-m", "appliance", "--log-level", "info", "run", "--profile", str(path),
               "--input", str(video), "--start", "2026-12-01T10:00:00+01:00"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO, check=False)
    match = re.search(r"\d+ frames in [\d.]+ s, ([\d.]+) fps", done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(done.stderr[-2000:])
    return float(match.group(1))


def anonymizer_cost(profile: Profile) -> str:
    faces = create_face_detector(profile.anonymizer.faces.model, profile.anonymizer.faces.min_score)
    lines = []
    for name, video in SEQUENCES.items():
        capture = cv2.VideoCapture(str(video))
        _, frame = capture.read()
        image = np.asarray(frame, np.uint8)
        faces.detect(image)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            faces.detect(image)
            times.append(time.perf_counter() - started)
        lines.append(f"{name} ({image.shape[1]}x{image.shape[0]}): {1000 * statistics.median(times):.1f} ms")
    return "Face detector of the anonymizer, per image that leaves (median of 20): " + "; ".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "x86.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-fps", action="store_true")
    args = parser.parse_args()
    profile = masks_profile(load_profile(args.profile).profile)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"Mask stage: min_score {profile.masks.min_score}, min_face_px {profile.masks.min_face_px}, "
          f"interval_s {profile.masks.interval_s}\n")  # fmt: skip
    print("\n".join(portraits(profile)) + "\n")
    print("\n".join(sequences(profile)) + "\n")
    print(anonymizer_cost(profile) + "\n")
    if not args.skip_fps:
        print("\n".join(fps_runs(args.profile, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
