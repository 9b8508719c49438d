"""Model architectures: how a frame becomes a network input and an output becomes detections.

A head knows the layout of one family of models, whatever backend runs them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from appliance.runtime.detectors.processing import (
    Floats,
    Placement,
    decode_ssd_rows,
    decode_yolov8,
    decode_yolox,
    letterbox,
    non_max_suppression,
    stretch,
    to_detections,
)
from appliance.runtime.types import Detection, Image

Shape = Sequence[int]


class Head(ABC):
    """Pre- and post-processing of one model family at one input size."""

    architecture: str
    rgb: bool  # the network wants RGB (else BGR)
    value_scale: float  # the network sees pixel * value_scale + value_offset
    value_offset: float = 0.0

    def __init__(self, width: int, height: int, class_id: int, min_score: float, nms_iou: float):
        self.width, self.height = width, height
        self.class_id, self.min_score, self.nms_iou = class_id, min_score, nms_iou

    @abstractmethod
    def place(self, image: Image) -> tuple[Image, Placement]:
        """The frame as a width x height uint8 canvas, in BGR, and how it was placed."""

    @abstractmethod
    def candidates(self, outputs: Sequence[Floats]) -> tuple[Floats, Floats]:
        """Person boxes (x1, y1, x2, y2 in input pixels) and scores at or above min_score."""

    def decode(self, outputs: Sequence[Floats], placement: Placement) -> list[Detection]:
        boxes, scores = self.candidates(outputs)
        keep = non_max_suppression(boxes, scores, self.nms_iou)
        return to_detections(boxes[keep], scores[keep], self.class_id, placement)


class YoloV8Head(Head):
    """Ultralytics YOLOv8/YOLO11: RGB 0..1, centred letterbox, (1, 4 + classes, anchors)."""

    architecture, rgb, value_scale = "yolov8", True, 1 / 255

    def place(self, image: Image) -> tuple[Image, Placement]:
        return letterbox(image, self.width, self.height, centered=True)

    def candidates(self, outputs: Sequence[Floats]) -> tuple[Floats, Floats]:
        boxes, scores = decode_yolov8(outputs[0], self.class_id, self.min_score)
        if len(boxes) and float(np.abs(boxes).max()) <= 2.0:  # exported with normalized boxes
            boxes = boxes * np.array([self.width, self.height] * 2, dtype=np.float32)
        return boxes, scores


class YoloXHead(Head):
    """Megvii YOLOX: BGR 0..255, letterbox padded right and bottom, raw (1, anchors, 5 + classes)
    outputs."""

    architecture, rgb, value_scale = "yolox", False, 1.0

    def place(self, image: Image) -> tuple[Image, Placement]:
        return letterbox(image, self.width, self.height, centered=False)

    def candidates(self, outputs: Sequence[Floats]) -> tuple[Floats, Floats]:
        return decode_yolox(outputs[0], self.width, self.height, self.class_id, self.min_score)


class SsdHead(Head):
    """SSD with a DetectionOutput layer (Open Model Zoo): BGR 0..255, plain resize, (1, 1, N, 7)."""

    architecture, rgb, value_scale = "ssd", False, 1.0

    def place(self, image: Image) -> tuple[Image, Placement]:
        return stretch(image, self.width, self.height)

    def candidates(self, outputs: Sequence[Floats]) -> tuple[Floats, Floats]:
        boxes, scores = decode_ssd_rows(outputs[0], self.class_id, self.min_score)
        return boxes * np.array([self.width, self.height] * 2, dtype=np.float32), scores


class TflitePostprocessHead(Head):
    """SSD with TFLite_Detection_PostProcess: RGB, plain resize; outputs boxes (y1, x1, y2, x2,
    normalized), classes, scores, count."""

    architecture, rgb, value_scale, value_offset = "ssd", True, 1 / 127.5, -1.0  # -1..1

    def place(self, image: Image) -> tuple[Image, Placement]:
        return stretch(image, self.width, self.height)

    def candidates(self, outputs: Sequence[Floats]) -> tuple[Floats, Floats]:
        boxes, classes, scores, count = (np.asarray(o).reshape(-1) for o in outputs[:4])
        n = int(count[0])
        keep = (classes[:n].round() == self.class_id) & (scores[:n] >= self.min_score)
        yxyx = boxes.reshape(-1, 4)[:n][keep]
        size = np.array([self.width, self.height] * 2, dtype=np.float32)
        return (yxyx[:, [1, 0, 3, 2]] * size).astype(np.float32), scores[:n][keep].astype(np.float32)


def infer_architecture(output_shapes: Sequence[Shape]) -> str:
    """Model family from the output shapes; 'unknown' when they fit none."""
    if len(output_shapes) == 4:
        return "ssd-postprocess"
    if len(output_shapes) == 1:
        shape = list(output_shapes[0])
        if len(shape) == 4 and shape[-1] == 7:
            return "ssd"
        if len(shape) == 3 and isinstance(shape[1], int) and isinstance(shape[2], int):
            if 4 < shape[1] < shape[2]:
                return "yolov8"
            if 5 < shape[2] < shape[1]:
                return "yolox"
    return "unknown"


HEADS: dict[str, type[Head]] = {
    "yolov8": YoloV8Head,
    "yolox": YoloXHead,
    "ssd": SsdHead,
    "ssd-postprocess": TflitePostprocessHead,
}
