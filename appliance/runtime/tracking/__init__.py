"""Tracking: people with stable ids from per-frame detections."""

from __future__ import annotations

from dataclasses import replace

from appliance.config.model import DetectorConfig, Profile, TrackerConfig
from appliance.runtime.tracking.base import Tracker
from appliance.runtime.tracking.bytetrack import ByteTracker
from appliance.runtime.tracking.iou import IouTracker
from appliance.runtime.tracking.kalman import KalmanTracker

__all__ = ["ByteTracker", "IouTracker", "KalmanTracker", "Tracker", "create_tracker", "detector_config_for"]


def create_tracker(config: TrackerConfig, min_score: float) -> Tracker:
    """The configured tracker; `min_score` is the detector's operating threshold."""
    if config.algorithm == "bytetrack":
        return ByteTracker(config, min_score)
    return KalmanTracker(config) if config.algorithm == "kalman" else IouTracker(config)


def detector_config_for(profile: Profile) -> DetectorConfig:
    """The profile's detector, keeping detections down to the lowest score its tracker uses:
    bytetrack continues people on weak detections that the operating threshold would drop."""
    detector, tracker = profile.detector, profile.tracker
    if tracker.algorithm != "bytetrack" or tracker.low_score >= detector.min_score:
        return detector
    return replace(detector, min_score=tracker.low_score)
