"""The face detector interface: frame in, faces out (with a mask verdict where the model gives one)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2

from appliance.runtime.types import Box, Image

NMS_IOU = 0.3


class FaceDetectorError(Exception):
    """A face detector that cannot start or run; the message says why."""


@dataclass(frozen=True, slots=True)
class Face:
    """One face, in frame pixels."""

    box: Box  # x1, y1, x2, y2
    score: float
    masked: bool | None = None  # None: the model does not tell

    @property
    def size(self) -> float:
        """The face's smaller side, in pixels."""
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


class FaceDetector(ABC):
    architecture: ClassVar[str]
    tells_masks: ClassVar[bool] = False

    def __init__(self, model_path: Path, min_score: float) -> None:
        self.model_path = model_path
        self.min_score = min_score

    @abstractmethod
    def detect(self, image: Image) -> list[Face]:
        """Every face from `min_score` up."""


_registered: dict[str, type[FaceDetector]] = {}


def register(detector: type[FaceDetector]) -> type[FaceDetector]:
    _registered[detector.architecture] = detector
    return detector


def face_detector_class(architecture: str) -> type[FaceDetector]:
    if architecture not in _registered:
        raise FaceDetectorError(f"unknown face model architecture '{architecture}'; known: {', '.join(_registered)}")
    return _registered[architecture]


def load_onnx(path: Path) -> cv2.dnn.Net:
    try:
        return cv2.dnn.readNetFromONNX(str(path))
    except cv2.error as error:
        raise FaceDetectorError(f"face model {path} could not be loaded by OpenCV: {error}") from None


def suppressed(boxes: list[Box], scores: list[float], min_score: float) -> list[int]:
    """Indices kept by non-maximum suppression."""
    if not boxes:
        return []
    rects = [(x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in boxes]
    return [int(i) for i in cv2.dnn.NMSBoxes(rects, scores, min_score, NMS_IOU)]
