"""Privacy against ground truth: how many heads the anonymizer hides, and at what cost.

    .venv/bin/python bench/privacy.py [--profile profiles/x86.yaml] [--grid] [--misses]

For each kit sequence, the profile's detector runs on every frame (down to the lowest score
tried) and the camera's real analyzer tracks people at the video's own frame rate. For every
frame the benchmark builds the regions the anonymizer would hide and checks each ground-truth
person of at least 40 px height (flag 1): a head is hidden when the centre of the top eighth of
the person's ground-truth box lies in a hidden region. It reports, per policy:

- heads hidden / all heads;
- coverable heads hidden / coverable: a person is coverable when a detection from the lowest
  score tried or a box the tracker holds overlaps their ground-truth box at IoU 0.5 or more.
  Target: all of them;
- the mean share of the image hidden, so that "hide everything" shows as a cost.

Policies: "before" is what issue 22 found (confirmed tracks only, no margin); "profile, no
faces" is the profile's anonymizer with `faces` off (person boxes only); "profile" is the
profile's anonymizer. `--grid` adds every (min_score, margin) pair the person-box defaults were
chosen from, and `--face-grid` every face (min_score, margin) pair (the rules in
docs/benchmarks.md); `--misses` lists each head the profile's policy left visible, by frame.
The face detector runs on every frame here, as if every frame left the device.

It also counts the faces the face detector finds (from the profile's face min_score) that no
person box's head region covers: what the face detector adds. On the stills (no ground truth),
it prints those counts, and writes the anonymized stills with `--write-stills FOLDER`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from appliance.config import load_profile
from appliance.config.model import AnonymizerConfig, Profile
from appliance.runtime.analysis.analyzer import CameraAnalyzer
from appliance.runtime.analysis.anonymizer import anonymize, boxes_to_hide, hidden_regions
from appliance.runtime.detectors import create_detector
from appliance.runtime.faces import Face, create_face_detector
from appliance.runtime.tracking import detector_config_for
from appliance.runtime.types import Box, Detection, Image
from evaluation import GroundTruthBox, iou_matrix, load_mot_ground_truth

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt"),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt"),
}
MIN_HEIGHT_PX = 40
LOWEST_SCORE = 0.05
GRID_SCORES = (0.05, 0.1, 0.2, 0.3)
GRID_MARGINS = (0.0, 0.1, 0.2)
LOWEST_FACE_SCORE = 0.2
FACE_GRID_SCORES = (0.2, 0.3, 0.5, 0.7)
FACE_GRID_MARGINS = (0.2, 0.3, 0.5)
STILLS = ("stills/bus.jpg", "stills/coco_000000373353.jpg", "stills/masked/img4.jpeg", "stills/masked/img1.jpeg")


@dataclass(frozen=True)
class FrameSeen:
    """What the runtime knows of one frame: every detection, the boxes the tracker holds, and the
    confirmed tracks (what was hidden before issue 22)."""

    detections: list[Detection]
    possible: list[Box]
    confirmed: list[Box]
    faces: list[Face]  # from LOWEST_FACE_SCORE up


@dataclass
class Tally:
    heads: int = 0
    hidden: int = 0
    coverable: int = 0
    coverable_hidden: int = 0
    share: float = 0.0
    frames: int = 0
    faces_beyond_people: int = 0  # faces found that no person box's head region covers

    def row(self, sequence: str, policy: str) -> str:
        return (
            f"| {sequence} | {policy} | {self.hidden} / {self.heads} ({100 * self.hidden / self.heads:.1f} %) | "
            f"{self.coverable_hidden} / {self.coverable} | {100 * self.share / self.frames:.1f} % | "
            f"{self.faces_beyond_people} |"
        )


def observe(profile: Profile, video: Path) -> tuple[list[FrameSeen], tuple[int, int]]:
    """Run the detector and the analyzer on every frame of `video`."""
    low = replace(profile, anonymizer=replace(profile.anonymizer, enabled=True, min_score=LOWEST_SCORE))
    detector = create_detector(detector_config_for(low))
    faces = create_face_detector(profile.anonymizer.faces.model, LOWEST_FACE_SCORE)
    analyzer = CameraAnalyzer(profile, profile.cameras[0].id)
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    seen: list[FrameSeen] = []
    size = (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        image: Image = np.asarray(frame, dtype=np.uint8)
        size = (image.shape[1], image.shape[0])
        detections = detector.detect(image)
        analysis = analyzer.process(len(seen) / fps, detections)
        tracks = [t.box for t in analysis.tracks]
        seen.append(FrameSeen(detections, analyzer.tracker.possible_people(), tracks, faces.detect(image)))
        print(f"\r  {video.name}: frame {len(seen)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    detector.close()
    return seen, size


def heads(truth: list[GroundTruthBox]) -> list[GroundTruthBox]:
    return [t for t in truth if t.counts and t.box[3] - t.box[1] >= MIN_HEIGHT_PX]


def head_point(box: Box) -> tuple[int, int]:
    """The centre of the top eighth of a ground-truth box."""
    return round((box[0] + box[2]) / 2), round(box[1] + (box[3] - box[1]) / 16)


def coverable(people: list[GroundTruthBox], frame: FrameSeen) -> list[Box | None]:
    """For each person, the detection (from the lowest score) or tracker box that overlaps them
    most at IoU 0.5 or more; None when there is none."""
    boxes = [d.box for d in frame.detections] + frame.possible
    if not people or not boxes:
        return [None] * len(people)
    ious = iou_matrix(np.array([p.box for p in people]), np.array(boxes, dtype=np.float64))
    return [boxes[int(row.argmax())] if row.max() >= 0.5 else None for row in ious]


def faces_hidden(faces: list[Face], config: AnonymizerConfig) -> list[Box]:
    """The faces a policy hides: those from its face min_score up, when its faces are on."""
    return [f.box for f in faces if f.score >= config.faces.min_score] if config.faces.enabled else []


def region_mask(regions: list[tuple[int, int, int, int]], size: tuple[int, int]) -> npt.NDArray[np.bool_]:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for x1, y1, x2, y2 in regions:
        mask[y1:y2, x1:x2] = True
    return mask


def faces_beyond(faces: list[Box], people_mask: npt.NDArray[np.bool_]) -> int:
    """Faces whose centre no person box's head region covers."""
    height, width = people_mask.shape
    centres = [
        (min(width - 1, round((x1 + x2) / 2)), min(height - 1, round((y1 + y2) / 2))) for x1, y1, x2, y2 in faces
    ]
    return sum(not people_mask[y, x] for x, y in centres)


def read_still(path: Path) -> Image:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return np.asarray(image, dtype=np.uint8)


def stills(profile: Profile, write_to: Path | None) -> list[str]:
    """Per still: people found, faces found, and faces no person box covers (profile's policy)."""
    config = replace(profile.anonymizer, enabled=True)
    low = replace(profile, anonymizer=config)
    detector = create_detector(detector_config_for(low))
    face_detector = create_face_detector(config.faces.model, config.faces.min_score)
    rows = ["| still | people boxes hidden | faces found | faces no person box covered |", "|---|---|---|---|"]
    for name in STILLS:
        image = read_still(DATA / name)
        height, width = image.shape[:2]
        boxes = boxes_to_hide(detector.detect(image), [], config.min_score)
        faces = [f.box for f in face_detector.detect(image)]
        beyond = faces_beyond(faces, region_mask(hidden_regions(boxes, config, width, height), (width, height)))
        rows.append(f"| `{name}` | {len(boxes)} | {len(faces)} | {beyond} |")
        if write_to is not None:
            write_to.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(write_to / Path(name).name), anonymize(image, boxes, config, faces))
    detector.close()
    return rows


def score(
    seen: list[FrameSeen],
    truth: dict[int, list[GroundTruthBox]],
    size: tuple[int, int],
    boxes_of: dict[str, tuple[AnonymizerConfig, bool]],
    misses: dict[str, list[str]],
) -> dict[str, Tally]:
    """Tallies per policy; `boxes_of[policy]` is its config and whether it hides confirmed
    tracks only (the old rule)."""
    width, height = size
    tallies = {policy: Tally() for policy in boxes_of}
    for number, frame in enumerate(seen, start=1):
        people = heads(truth.get(number, []))
        covered = coverable(people, frame)
        for policy, (config, confirmed_only) in boxes_of.items():
            boxes = frame.confirmed if confirmed_only else boxes_to_hide(frame.detections, frame.possible,
                                                                          config.min_score)  # fmt: skip
            mask = region_mask(hidden_regions(boxes, config, width, height), size)
            faces = faces_hidden(frame.faces, config)
            beyond = faces_beyond(faces, mask)
            mask |= region_mask(hidden_regions([], config, width, height, faces), size)
            tally = tallies[policy]
            tally.frames += 1
            tally.share += float(mask.mean())
            tally.faces_beyond_people += beyond
            for person, can in zip(people, covered, strict=True):
                x, y = head_point(person.box)
                hidden = 0 <= x < width and 0 <= y < height and bool(mask[y, x])
                tally.heads += 1
                tally.hidden += hidden
                tally.coverable += can is not None
                tally.coverable_hidden += can is not None and hidden
                if not hidden and policy in misses:
                    seen_as = f"seen at {tuple(round(v) for v in can)}" if can else "never detected"
                    box = tuple(round(v) for v in person.box)
                    misses[policy].append(f"  frame {number}: id {person.track_id} at {box}, {seen_as}")
    return tallies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "x86.yaml", help="the profile to measure")
    parser.add_argument("--grid", action="store_true", help="also every (min_score, margin) pair the default came from")
    parser.add_argument("--face-grid", action="store_true", help="also every face (min_score, margin) pair")
    parser.add_argument("--misses", action="store_true", help="list each head the profile's policy left visible")
    parser.add_argument("--write-stills", type=Path, help="write the anonymized stills to this folder")
    args = parser.parse_args()
    profile = load_profile(args.profile).profile
    config = replace(profile.anonymizer, enabled=True)
    no_faces = replace(config, faces=replace(config.faces, enabled=False))
    policies = {"before (confirmed tracks)": (replace(no_faces, margin=0.0), True),
                "profile, no faces": (no_faces, False), "profile": (config, False)}  # fmt: skip
    if args.grid:
        for min_score in GRID_SCORES:
            for margin in GRID_MARGINS:
                policies[f"min_score {min_score}, margin {margin}"] = (
                    replace(config, min_score=min_score, margin=margin), False,
                )  # fmt: skip
    if args.face_grid:
        for face_score in FACE_GRID_SCORES:
            for face_margin in FACE_GRID_MARGINS:
                faces = replace(config.faces, enabled=True, min_score=face_score, margin=face_margin)
                policies[f"faces from {face_score}, margin {face_margin}"] = (replace(config, faces=faces), False)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"Profile: {args.profile.name}: min_score {config.min_score}, margin {config.margin}, "
          f"head_fraction {config.head_fraction}; faces {config.faces.enabled}: from {config.faces.min_score}, "
          f"margin {config.faces.margin}\n")  # fmt: skip
    rows = ["| sequence | policy | heads hidden | coverable heads hidden | image hidden | faces beyond people |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    missed: dict[str, list[str]] = {"profile": []}
    for sequence, (video, gt) in SEQUENCES.items():
        seen, size = observe(profile, DATA / video)
        missed["profile"].append(f"{sequence}:")
        tallies = score(seen, load_mot_ground_truth(DATA / gt), size, policies, missed)
        rows += [tally.row(sequence, policy) for policy, tally in tallies.items()]
    print("\n".join(rows))
    print("\n" + "\n".join(stills(profile, args.write_stills)))
    if args.misses:
        print("\nHeads the profile's policy left visible:\n" + "\n".join(missed["profile"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
