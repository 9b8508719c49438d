"""Person detectors: one module per backend behind `Detector`, imported only when chosen."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path

from appliance.config.model import DetectorConfig
from appliance.runtime.detectors.base import Detector, DetectorError
from appliance.runtime.models import model_path_for, verify_model

log = logging.getLogger(__name__)
BACKEND_MODULES = {
    "opencv": "opencv",
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "tflite": "tflite",
    "edgetpu": "edgetpu",
    "tensorrt": "tensorrt",
    "ultralytics": "ultralytics",
}

__all__ = ["Detector", "DetectorError", "create_detector"]


def create_detector(config: DetectorConfig, profile_dir: Path | None = None, cache_dir: Path | None = None) -> Detector:
    """The detector a profile asks for, with its model file checked first. Relative model paths
    are relative to `profile_dir`; backends that derive files (TensorRT engines) keep them in
    `cache_dir`."""
    model_path = model_path_for(config.model.path, profile_dir)
    if model_path is not None:
        verify_model(model_path, config.model.sha256)
    module = importlib.import_module(f"appliance.runtime.detectors.{BACKEND_MODULES[config.backend]}")
    factory: Callable[[DetectorConfig, Path | None, Path | None], Detector] = module.DETECTOR
    detector = factory(config, model_path, cache_dir)
    log.info("detector: %s", detector.describe())
    return detector
