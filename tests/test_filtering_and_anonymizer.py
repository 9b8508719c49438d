"""Filtering before tracking, the per-camera analyzer, and the anonymizer on real images."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from appliance.config import load_profile
from appliance.config.model import AnonymizerConfig, BoxFilterConfig
from appliance.runtime.analysis.analyzer import CameraAnalyzer
from appliance.runtime.analysis.filtering import RegionOfInterest, select_people
from appliance.runtime.outputs.anonymizer import anonymize, head_region
from appliance.runtime.types import Detection
from evaluation import load_mot_ground_truth
from tests.conftest import PETS_TRUTH, PETS_VIDEO, PROFILES, read_frames

NO_LIMITS = BoxFilterConfig(None, None, None, None)


def test_roi_keeps_people_whose_feet_are_inside() -> None:
    roi = RegionOfInterest([(0, 100), (200, 100), (200, 300), (0, 300)])
    feet_inside = Detection((50, 20, 90, 150), 0.9, 0)  # head outside, feet inside
    feet_outside = Detection((50, 200, 90, 350), 0.9, 0)  # head inside, feet outside
    on_the_edge = Detection((180, 100, 220, 300), 0.9, 0)
    kept = select_people([feet_inside, feet_outside, on_the_edge], box_filter=NO_LIMITS, roi=roi)
    assert kept == [feet_inside, on_the_edge]


def test_size_filters() -> None:
    person = Detection((100, 100, 140, 200), 0.9, 0)
    tiny = Detection((500, 100, 505, 110), 0.9, 0)
    giant = Detection((0, 0, 700, 570), 0.9, 0)
    limits = BoxFilterConfig(min_height_px=20, max_height_px=400, min_width_px=None, max_width_px=None)
    assert select_people([person, tiny, giant], box_filter=limits, roi=None) == [person]


def test_camera_analyzer_counts_people_and_violations_on_real_ground_truth(data: Path) -> None:
    profile = load_profile(PROFILES / "x86.yaml").profile
    profile = replace(profile, tracker=replace(profile.tracker, min_hits=1))
    analyzer = CameraAnalyzer(profile, "lobby")
    truth = load_mot_ground_truth(data / PETS_TRUTH)
    results = [
        analyzer.process(number / 7, [Detection(b.box, 1.0, 0) for b in truth.get(number, []) if b.counts])
        for number in range(1, 796)
    ]
    assert max(len(r.tracks) for r in results) >= 6
    assert any(r.people_in_violation for r in results)
    for r in results:
        assert len(r.people_in_violation) <= len(r.tracks)
        assert 0.0 <= r.environment_score <= 1.0
    started = [e for r in results for e in r.episodes_started]
    ended = [e for r in results for e in r.episodes_ended] + analyzer.finish()
    assert len(started) == len(ended) > 0
    assert all(e.duration is not None and e.duration >= profile.distancing.min_episode_s for e in ended)


def test_anonymizer_changes_heads_and_nothing_else(data: Path) -> None:
    image = read_frames(data / PETS_VIDEO, [400])[400]
    truth = load_mot_ground_truth(data / PETS_TRUTH)[400]
    boxes = [b.box for b in truth]
    config = AnonymizerConfig(enabled=True, method="blur", head_fraction=0.25)
    blurred = anonymize(image, boxes, config)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for box in boxes:
        region = head_region(box, 0.25, image.shape[1], image.shape[0])
        assert region is not None
        x1, y1, x2, y2 = region
        mask[y1:y2, x1:x2] = True
        assert not np.array_equal(blurred[y1:y2, x1:x2], image[y1:y2, x1:x2])
    assert np.array_equal(blurred[~mask], image[~mask])
    pixelated = anonymize(image, boxes, replace(config, method="pixelate"))
    assert np.array_equal(pixelated[~mask], image[~mask]) and not np.array_equal(pixelated, image)
    assert anonymize(image, boxes, replace(config, enabled=False)) is image


def test_anonymizer_is_on_by_default() -> None:
    assert load_profile(PROFILES / "x86.yaml").profile.anonymizer.enabled


def test_anonymizer_copes_with_boxes_leaving_the_frame() -> None:
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    cv2.circle(image, (50, 10), 8, (0, 0, 0), -1)
    result = anonymize(image, [(-20, -30, 120, 90), (150, 150, 200, 200)], AnonymizerConfig(True, "blur", 0.3))
    assert result.shape == image.shape and not np.array_equal(result, image)
