"""Ultralytics backend, optional: YOLO .pt (or exported) models through the ultralytics package,
with its own pre- and post-processing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config.backends import BACKENDS
from appliance.config.model import DetectorConfig
from appliance.runtime.detectors.base import Detector, DetectorError, import_backend
from appliance.runtime.detectors.processing import Floats, Placement, to_detections
from appliance.runtime.detectors.registry import Backend, register
from appliance.runtime.types import Detection, Image


class UltralyticsDetector(Detector):
    backend = "ultralytics"

    def __init__(self, config: DetectorConfig, model_path: Path | None, cache_dir: Path | None = None) -> None:
        super().__init__(config, model_path, cache_dir)
        if model_path is None:
            raise DetectorError("the 'ultralytics' backend needs detector.model.path")
        yolo = import_backend("ultralytics", self.backend, "ultralytics").YOLO
        try:
            self.model = yolo(str(model_path))
        except Exception as error:  # ultralytics raises many kinds
            raise DetectorError(f"ultralytics cannot load {model_path}: {error}") from None
        self.device = None if config.device == "auto" else config.device
        self.size = max(config.input_size) if config.input_size else 640

    def prepare(self, image: Image) -> tuple[Any, Placement]:
        height, width = image.shape[:2]
        return image, Placement(width, height, 1.0, 1.0)

    def infer(self, tensor: Any) -> Sequence[Floats]:
        result = self.model.predict(
            tensor,
            imgsz=self.size,
            conf=self.config.min_score,
            iou=self.config.nms_iou,
            classes=[self.config.class_id],
            device=self.device,
            verbose=False,
        )[0]
        return [
            result.boxes.xyxy.cpu().numpy().astype(np.float32),
            result.boxes.conf.cpu().numpy().astype(np.float32),
        ]

    def decode(self, outputs: Sequence[Floats], placement: Placement) -> list[Detection]:
        boxes, scores = outputs
        return to_detections(boxes, scores, self.config.class_id, placement)


BACKEND = register(Backend(spec=BACKENDS["ultralytics"], factory=UltralyticsDetector, owns_accelerator=False))
