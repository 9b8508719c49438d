"""Face detectors: one module per model family, registered by the architecture a profile names
(`yunet`, `rfb-masked-face`), behind `FaceDetector`. They run through OpenCV's DNN module, which
every image has, whatever the person detector's backend."""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.config.model import FaceModelConfig
from appliance.models import verify_model
from appliance.runtime.faces.base import Face, FaceDetector, FaceDetectorError, face_detector_class
from appliance.runtime.faces.rfb import RfbMaskedFaceDetector
from appliance.runtime.faces.yunet import YunetFaceDetector

log = logging.getLogger(__name__)

__all__ = [
    "Face",
    "FaceDetector",
    "FaceDetectorError",
    "RfbMaskedFaceDetector",
    "YunetFaceDetector",
    "create_face_detector",
]


def create_face_detector(model: FaceModelConfig, min_score: float, key: str = "anonymizer.faces.model") -> FaceDetector:
    """The face detector a profile names, its model file checked against the pinned sha256 first."""
    if model.path is None:
        raise FaceDetectorError("a face detector needs its model file (model.path)")
    path = Path(model.path)
    verify_model(path, model.sha256, key)
    detector = face_detector_class(model.architecture)(path, min_score)
    log.info("face detector: %s (%s), from score %.2f", model.architecture, path.name, min_score)
    return detector
