"""Zones and lines against the ground truth, from the real runtime.

    .venv/bin/python bench/places.py [--profile profiles/x86.yaml]

For each kit sequence the runtime runs in historical mode (`appliance run --input`) on a profile
extending the shipped one, with the zones and lines of `evaluation.places.layout` (placed once,
as shares of the frame, before any result was seen). From its event log: crossings per line and
direction, people per zone and frame (`zone` records, every frame), and each ended visit; the
same from the ground-truth tracks by the appliance's own zone and line logic (flag-1 boxes). The
dwell error of a true visit is against the reported visit of the same zone, by a track mapped to
the same person (IoU 0.5, most frames), that overlaps it most.

Targets (issue 26): line counts within 1 of the truth for every line and direction, people per
zone and frame MAE under 0.5 on PETS09-S2L1, median dwell error under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import cv2

from evaluation import load_mot_ground_truth
from evaluation.places import PlacesFigures, Visit, dwell_errors, layout, truth_places, zone_mae
from evaluation.truth import FrameReport, identity_map

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt"),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt"),
}


def camera_yaml(video: Path, width: int, height: int) -> str:
    zones, lines = layout(width, height)

    def points(shape: tuple[tuple[float, float], ...]) -> str:
        return "[" + ", ".join(f"[{x}, {y}]" for x, y in shape) + "]"

    return (
        f"cameras:\n  - id: cam\n    source: {video}\n    zones:\n"
        + "".join(f"      - {{id: {z.id}, polygon: {points(z.polygon)}}}\n" for z in zones)
        + "    lines:\n"
        + "".join(f"      - {{id: {line.id}, points: {points(line.points)}}}\n" for line in lines)
    )


def run_appliance(
    profile: Path, sequence: str, folder: Path, fps: float
) -> tuple[PlacesFigures, dict[int, FrameReport]]:
    video, _ = SEQUENCES[sequence]
    capture = cv2.VideoCapture(str(DATA / video))
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    site = folder / f"{sequence}.yaml"
    site.write_text(
        f"extends: {profile.resolve()}\n" + camera_yaml(DATA / video, width, height)
        + "areas: [{id: all, cameras: [cam]}]\n"
        + f"storage: {{data_dir: {folder / sequence}, event_log: {{sample_interval_s: 0}}}}\n"
        "metrics: {enabled: false}\nmqtt: {enabled: false}\napi: {enabled: false}\nota: {enabled: false}\n"
        "logging: {level: warning}\n"
    )  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "appliance", "run", "--profile", str(site), "--input", str(DATA / video)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"appliance run failed on {sequence}:\n{run.stderr}")
    figures, frames = PlacesFigures(), {}
    for line in next((folder / sequence / "events" / "cam").glob("*.jsonl")).read_text().splitlines():
        record = json.loads(line)
        match record["type"]:
            case "crossing":
                figures.crossings[(record["line"], record["direction"])] += 1
            case "zone":
                figures.people.setdefault(record["zone"], {})[round(record["t"] * fps) + 1] = record["people"]
            case "zone_visit" if record["state"] == "ended":
                figures.visits.append(Visit(record["zone"], record["track"], record["entered"], record["left"]))
            case "detections":
                people = {p["id"]: tuple(p["box"]) for p in record["people"]}
                frames[record["frame"] + 1] = FrameReport(people, frozenset())
    return figures, frames


def rows(sequence: str, profile: Path, folder: Path) -> list[str]:
    video, gt = SEQUENCES[sequence]
    capture = cv2.VideoCapture(str(DATA / video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    truth = load_mot_ground_truth(DATA / gt)
    zones, lines = layout(width, height)
    expected = truth_places(truth, zones, lines, fps)
    reported, frames = run_appliance(profile, sequence, folder, fps)
    out = []
    for line in lines:
        for direction in ("in", "out"):
            key = (line.id, direction)
            got, true = reported.crossings[key], expected.crossings[key]
            out.append(f"| {sequence} | line {line.id}, {direction} | {got} | {true} | {got - true:+d} |")
    for zone in zones:
        mae = zone_mae(reported.people.get(zone.id, {}), expected.people[zone.id])
        out.append(f"| {sequence} | zone {zone.id}, people per frame | MAE {mae:.2f} | | |")
    errors = dwell_errors(reported.visits, expected.visits, identity_map(frames, truth))
    median = statistics.median(errors) if errors else float("nan")
    visits = Counter(v.zone for v in expected.visits)
    out.append(f"| {sequence} | dwell, {len(errors)} of {sum(visits.values())} true visits matched | "
               f"median error {median:.2f} s | | |")  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "x86.yaml", help="the profile to extend")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| sequence | figure | reported | truth | difference |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for sequence in SEQUENCES:
            for line in rows(sequence, args.profile, Path(folder)):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
