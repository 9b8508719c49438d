"""Person detectors: one module per backend in `backends/`, registered in `registry`, behind
`Detector`; a backend's runtime package is imported only when it is chosen."""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.config.model import DetectorConfig
from appliance.models import verify_model
from appliance.runtime.detectors.base import Detector, DetectorError
from appliance.runtime.detectors.registry import backend_info

log = logging.getLogger(__name__)

__all__ = ["Detector", "DetectorError", "create_detector"]


def create_detector(config: DetectorConfig, cache_dir: Path | None = None) -> Detector:
    """The detector a profile asks for, with its model file checked first (the loader made its
    path absolute); backends that derive files (TensorRT engines) keep them in `cache_dir`."""
    model_path = Path(config.model.path) if config.model.path else None
    if model_path is not None:
        verify_model(model_path, config.model.sha256)
    detector = backend_info(config.backend).factory(config, model_path, cache_dir)
    log.info("detector: %s", detector.describe())
    return detector
