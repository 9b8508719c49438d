"""Motion gating: the detector runs where something moved, and at least every max_interval_s."""

from __future__ import annotations

import cv2
import numpy as np

from appliance.config.model import MotionConfig
from appliance.runtime.analysis.motion import MotionGate

CONFIG = MotionConfig(enabled=True, min_changed=0.002, max_interval_s=1.0)
FPS = 5


def scene(person_x: int | None = None) -> np.ndarray:
    """A 720p frame of a textured floor, with a 'person' (a dark 60x160 box) at `person_x`."""
    image = np.random.default_rng(1).integers(90, 110, (720, 1280, 3), dtype=np.uint8)
    if person_x is not None:
        cv2.rectangle(image, (person_x, 300), (person_x + 60, 460), (30, 30, 30), -1)
    return image


def test_a_still_scene_is_detected_only_at_the_periodic_full_detection() -> None:
    gate, still = MotionGate(CONFIG), scene(400)
    detected = [gate.needs_detection(still, frame / FPS) for frame in range(10 * FPS)]
    assert detected[0] and sum(detected) == 10  # once a second over 10 s: never more than 1 s apart
    assert all(any(detected[i : i + FPS]) for i in range(0, len(detected) - FPS + 1))


def test_a_person_walking_is_detected_every_frame() -> None:
    gate = MotionGate(CONFIG)
    assert all(gate.needs_detection(scene(100 + 30 * frame), frame / FPS) for frame in range(20))


def test_small_changes_add_up_against_the_last_detected_frame() -> None:
    """A person moving 2 pixels a frame changes too little from one frame to the next, but is
    compared with the frame of the detections in use, so they are detected again before long."""
    gate = MotionGate(replace_interval(60.0))
    detected = [gate.needs_detection(scene(400 + 2 * frame), frame / FPS) for frame in range(30)]
    assert 2 <= sum(detected) < 30


def test_a_snapshot_forces_the_detector() -> None:
    gate, still = MotionGate(CONFIG), scene(400)
    assert gate.needs_detection(still, 0.0)
    assert not gate.needs_detection(still, 0.2)
    assert gate.needs_detection(still, 0.4, force=True)


def replace_interval(seconds: float) -> MotionConfig:
    return MotionConfig(enabled=True, min_changed=CONFIG.min_changed, max_interval_s=seconds)
