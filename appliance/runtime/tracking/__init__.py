"""Tracking: people with stable ids from per-frame detections."""

from __future__ import annotations

from appliance.config.model import TrackerConfig
from appliance.runtime.tracking.base import Tracker
from appliance.runtime.tracking.iou import IouTracker
from appliance.runtime.tracking.kalman import KalmanTracker

__all__ = ["IouTracker", "KalmanTracker", "Tracker", "create_tracker"]


def create_tracker(config: TrackerConfig) -> Tracker:
    return KalmanTracker(config) if config.algorithm == "kalman" else IouTracker(config)
