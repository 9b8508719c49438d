"""Face-mask verdicts: whether each person wears a mask, from a face detector that tells masked
faces from bare ones. A face smaller than `masks.min_face_px` gets no verdict ("too small to
tell"), and neither does a person whose head is that small: a face too small to judge is never
counted as unmasked. A person whose face is not found (turned away) is not counted at all."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from appliance.config.model import MasksConfig
from appliance.runtime.events import MASK_MINUTE_S, MaskCounts, MaskMinute
from appliance.runtime.events import MaskVerdict as Verdict
from appliance.runtime.faces.base import Face, FaceDetector, FaceDetectorError
from appliance.runtime.types import Box, Image, Track

HEAD_SHARE = 1 / 8  # a standing person's face is about an eighth of their height
HEAD_CROP = 0.35  # the top of the box looked at for the face
CANVAS = (640, 480)


def face_verdict(face: Face, min_face_px: float) -> Verdict:
    if face.size < min_face_px or face.masked is None:
        return "too_small"
    return "masked" if face.masked else "unmasked"


def image_verdicts(detector: FaceDetector, image: Image, min_face_px: float) -> list[tuple[Face, Verdict]]:
    """Every face of a whole image (a still, a photo) with its verdict: the faces are found on the
    whole image, then each is judged again at its own scale, with half its size around it. The
    network sees the whole image shrunk to 640x480, where a mask is easier to miss (on the kit's
    portrait photo, 2 masks of 16 were)."""
    verdicts = []
    for face in detector.detect(image):
        crop, _ = face_crop(image, face.box)
        closer = _best(detector.detect(crop)) if crop is not None else None
        judged = Face(face.box, face.score, closer.masked) if closer is not None else face
        verdicts.append((judged, face_verdict(judged, min_face_px)))
    return verdicts


@dataclass(frozen=True, slots=True)
class PersonVerdict:
    track_id: int
    verdict: Verdict


class MaskJudge:
    """Looks at each person's head at most every `interval_s` and gives a verdict."""

    def __init__(self, config: MasksConfig, detector: FaceDetector) -> None:
        if not detector.tells_masks:
            raise FaceDetectorError(f"masks.model: a '{config.model.architecture}' model does not tell masks")
        self.config, self.detector = config, detector
        self._last_looked: dict[int, float] = {}

    def due(self, track_id: int, timestamp: float) -> bool:
        return timestamp - self._last_looked.get(track_id, float("-inf")) >= self.config.interval_s

    def judge(self, image: Image, timestamp: float, tracks: Sequence[Track]) -> list[PersonVerdict]:
        """Verdicts for the people due a look; none for a person whose face is not found."""
        verdicts = []
        for track in tracks:
            if not self.due(track.track_id, timestamp):
                continue
            self._last_looked[track.track_id] = timestamp
            verdict = self._person(image, track.box)
            if verdict is not None:
                verdicts.append(PersonVerdict(track.track_id, verdict))
        live = {t.track_id for t in tracks}
        self._last_looked = {k: v for k, v in self._last_looked.items() if k in live}
        return verdicts

    def _person(self, image: Image, box: Box) -> Verdict | None:
        if (box[3] - box[1]) * HEAD_SHARE < self.config.min_face_px:
            return "too_small"
        crop, scale = head_crop(image, box)
        if crop is None:
            return None
        best = _best(self.detector.detect(crop))
        return face_verdict(best, self.config.min_face_px * scale) if best is not None else None


def head_crop(image: Image, box: Box) -> tuple[Image | None, float]:
    """The top of a person's box, widened to the canvas's shape, on the canvas (see `on_canvas`)."""
    x1, y1, x2, y2 = box
    crop_h = (y2 - y1) * HEAD_CROP
    crop_w = max(x2 - x1, crop_h * CANVAS[0] / CANVAS[1])
    centre = (x1 + x2) / 2
    return on_canvas(image, (centre - crop_w / 2, y1 - 0.05 * crop_h, centre + crop_w / 2, y1 + crop_h))


def face_crop(image: Image, face: Box, margin: float = 0.5) -> tuple[Image | None, float]:
    """A face with `margin` of its larger side around it, on the canvas (see `on_canvas`)."""
    x1, y1, x2, y2 = face
    grow = max(x2 - x1, y2 - y1) * margin
    return on_canvas(image, (x1 - grow, y1 - grow, x2 + grow, y2 + grow))


def on_canvas(image: Image, region: Box) -> tuple[Image | None, float]:
    """A region of the image placed at its own scale on a black canvas of the network's input size
    (scaled down where it does not fit), so that the network sees its faces as large as they are:
    (canvas, canvas pixels per image pixel); None for a region outside the image."""
    height, width = image.shape[:2]
    left, top = max(0, round(region[0])), max(0, round(region[1]))
    right, bottom = min(width, round(region[2])), min(height, round(region[3]))
    if right - left < 2 or bottom - top < 2:
        return None, 1.0
    patch = image[top:bottom, left:right]
    scale = min(1.0, CANVAS[0] / patch.shape[1], CANVAS[1] / patch.shape[0])
    if scale < 1.0:
        patch = np.asarray(cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8)
    canvas = np.zeros((CANVAS[1], CANVAS[0], 3), np.uint8)
    canvas[: patch.shape[0], : patch.shape[1]] = patch
    return canvas, scale


def _best(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda face: face.score) if faces else None


class MaskMinutes:
    """A camera's verdicts gathered by minute: each person counted once a minute, by their most
    frequent verdict in it (ties go to the latest), for the camera and for each zone they were in."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._minute: float | None = None
        self._people: dict[int, list[Verdict]] = {}
        self._zones: dict[int, set[str]] = {}

    def add(
        self, timestamp: float, verdicts: Sequence[PersonVerdict], zones_of: Mapping[int, frozenset[str]]
    ) -> MaskMinute | None:
        """Take a frame's verdicts; the minute before, once a frame of a later minute comes."""
        minute = math.floor(timestamp / MASK_MINUTE_S) * MASK_MINUTE_S
        ended = self.finish() if self._minute is not None and minute != self._minute else None
        self._minute = minute
        for verdict in verdicts:
            self._people.setdefault(verdict.track_id, []).append(verdict.verdict)
            self._zones.setdefault(verdict.track_id, set()).update(zones_of.get(verdict.track_id, ()))
        return ended

    def finish(self) -> MaskMinute | None:
        """The minute so far (every minute, with no one seen in it too, once it began)."""
        if self._minute is None:
            return None
        chosen = {track_id: _most_frequent(seen) for track_id, seen in self._people.items()}
        zone_ids = sorted({zone for zones in self._zones.values() for zone in zones})
        zones = tuple((zone, _counts(v for t, v in chosen.items() if zone in self._zones[t])) for zone in zone_ids)
        minute = MaskMinute(self.camera_id, self._minute, _counts(chosen.values()), zones)
        self._minute, self._people, self._zones = None, {}, {}
        return minute


def _most_frequent(seen: list[Verdict]) -> Verdict:
    counted = Counter(seen)
    return max(reversed(seen), key=lambda verdict: counted[verdict])


def _counts(verdicts: Iterable[Verdict]) -> MaskCounts:
    counted = Counter(verdicts)
    return MaskCounts(counted["masked"], counted["unmasked"], counted["too_small"])
