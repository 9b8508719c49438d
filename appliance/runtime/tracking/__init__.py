"""Tracking: people with stable ids from per-frame detections."""

from __future__ import annotations

from dataclasses import replace

from appliance.config.model import DetectorConfig, Profile, TrackerConfig
from appliance.runtime.tracking.base import Tracker
from appliance.runtime.tracking.bytetrack import ByteTracker
from appliance.runtime.tracking.iou import IouTracker
from appliance.runtime.tracking.kalman import KalmanTracker

__all__ = [
    "ByteTracker",
    "IouTracker",
    "KalmanTracker",
    "Tracker",
    "create_tracker",
    "detector_config_for",
    "tracking_min_score",
]


def create_tracker(config: TrackerConfig, min_score: float) -> Tracker:
    """The configured tracker; `min_score` is the detector's operating threshold."""
    if config.algorithm == "bytetrack":
        return ByteTracker(config, min_score)
    return KalmanTracker(config) if config.algorithm == "kalman" else IouTracker(config)


def tracking_min_score(profile: Profile) -> float:
    """The lowest detection score the tracker uses: bytetrack continues people on weak
    detections that the operating threshold would drop."""
    detector, tracker = profile.detector, profile.tracker
    if tracker.algorithm == "bytetrack":
        return min(detector.min_score, tracker.low_score)
    return detector.min_score


def detector_config_for(profile: Profile) -> DetectorConfig:
    """The profile's detector, keeping detections down to the lowest score anything uses: the
    tracker (`tracking_min_score`) and, when it is on, the anonymizer, which hides every
    detection from `anonymizer.min_score` up."""
    lowest = tracking_min_score(profile)
    if profile.anonymizer.enabled:
        lowest = min(lowest, profile.anonymizer.min_score)
    return profile.detector if lowest >= profile.detector.min_score else replace(profile.detector, min_score=lowest)
