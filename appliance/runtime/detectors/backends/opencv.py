"""OpenCV backend, the fallback that always works: the HOG people detector with no model file
(needs an OpenCV build that still has HOGDescriptor), or OpenCV DNN on an ONNX model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from appliance.config.backends import BACKENDS
from appliance.config.model import DetectorConfig
from appliance.runtime.detectors.base import (
    DEFAULT_INPUT_SIZE,
    Detector,
    DetectorError,
    NetworkDetector,
)
from appliance.runtime.detectors.heads import Shape
from appliance.runtime.detectors.processing import (
    Floats,
    Placement,
    non_max_suppression,
    stretch,
    to_detections,
)
from appliance.runtime.detectors.registry import Backend, register
from appliance.runtime.types import Detection, Image

# The default people detector's 64x128 window has a margin around the person; OpenCV's
# peopledetect sample shrinks each box by these fractions of its width and height per side.
HOG_SHRINK_X, HOG_SHRINK_Y = 0.15, 0.05


class HogDetector(Detector):
    """OpenCV's default HOG + linear SVM people detector."""

    backend = "opencv"

    def __init__(self, config: DetectorConfig, model_path: Path | None, cache_dir: Path | None = None) -> None:
        super().__init__(config, model_path, cache_dir)
        if not hasattr(cv2, "HOGDescriptor"):
            raise DetectorError(
                f"OpenCV {cv2.__version__} has no HOGDescriptor (OpenCV 5 removed it): install "
                "opencv-python-headless<5, or give the opencv backend an ONNX model"
            )
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))

    def prepare(self, image: Image) -> tuple[Any, Placement]:
        if self.config.input_size is None:
            height, width = image.shape[:2]
            return image, Placement(width, height, 1.0, 1.0)
        return stretch(image, *self.config.input_size)

    def infer(self, tensor: Any) -> Sequence[Floats]:
        rects, weights = self.hog.detectMultiScale(tensor, winStride=(8, 8), padding=(8, 8), scale=1.05)
        return [
            np.asarray(rects, dtype=np.float32).reshape(-1, 4),
            np.asarray(weights, dtype=np.float32).reshape(-1),
        ]

    def decode(self, outputs: Sequence[Floats], placement: Placement) -> list[Detection]:
        rects, weights = outputs
        scores = weights / (1 + np.abs(weights))  # SVM margin mapped onto 0..1, monotonic
        keep = scores >= self.config.min_score
        x, y, w, h = (rects[keep, i] for i in range(4))
        dx, dy = w * HOG_SHRINK_X, h * HOG_SHRINK_Y
        boxes = np.stack([x + dx, y + dy, x + w - dx, y + h - dy], axis=1).astype(np.float32)
        kept = non_max_suppression(boxes, scores[keep], self.config.nms_iou)
        return to_detections(boxes[kept], scores[keep][kept], self.config.class_id, placement)

    def describe(self) -> str:
        size = "native size" if self.config.input_size is None else "x".join(map(str, self.config.input_size))
        return f"opencv HOG people detector ({size}, no model file)"


class OpenCvDnnDetector(NetworkDetector):
    """An ONNX model through OpenCV's own DNN module."""

    backend = "opencv"

    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        try:
            self.net = cv2.dnn.readNetFromONNX(str(model_path))
        except cv2.error as error:
            raise DetectorError(f"OpenCV DNN cannot load {model_path}: {error}") from None
        if self.config.threads:
            cv2.setNumThreads(self.config.threads)
        width, height = self.config.input_size or self._default_size()
        probe = np.zeros((1, 3, height, width), dtype=np.float32)
        try:
            self.net.setInput(probe)
            shapes = [o.shape for o in self.net.forward(self.net.getUnconnectedOutLayersNames())]
        except cv2.error as error:
            raise DetectorError(
                f"OpenCV DNN cannot run {model_path} at {width}x{height}; set detector.input_size "
                f"to the model's input size ({str(error).strip().splitlines()[-1]})"
            ) from None
        return (width, height), shapes

    def _default_size(self) -> tuple[int, int]:
        side = DEFAULT_INPUT_SIZE.get(self.config.model.architecture, DEFAULT_INPUT_SIZE["yolov8"])
        return side, side

    def infer(self, tensor: Any) -> Sequence[Floats]:
        self.net.setInput(tensor)
        return cast(Sequence[Floats], self.net.forward(self.net.getUnconnectedOutLayersNames()))


def create(config: DetectorConfig, model_path: Path | None, cache_dir: Path | None = None) -> Detector:
    if model_path is None:
        return HogDetector(config, model_path, cache_dir)
    return OpenCvDnnDetector(config, model_path, cache_dir)


BACKEND = register(Backend(spec=BACKENDS["opencv"], factory=create, owns_accelerator=False))
