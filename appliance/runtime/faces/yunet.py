"""YuNet (libfacedetection, Apache-2.0): a small anchor-free face detector with a dynamic input,
run at the frame's own size (padded to a multiple of 32) on OpenVINO's CPU plugin, which every
image has. OpenCV's `FaceDetectorYN` would decode it for us, but OpenCV's ONNX importer refuses
the dynamic model, so the three strides are decoded here as that class does: score =
sqrt(cls x obj), centre = (cell + offset) x stride, size = exp(log-size) x stride. Faces of
about 10 pixels and up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.runtime.faces.base import Face, FaceDetector, FaceDetectorError, register, suppressed
from appliance.runtime.types import Box, Image

STRIDES = (8, 16, 32)
PAD = 32
Floats = npt.NDArray[np.float32]


@register
class YunetFaceDetector(FaceDetector):
    architecture = "yunet"

    def __init__(self, model_path: Path, min_score: float) -> None:
        super().__init__(model_path, min_score)
        import openvino

        try:
            self._core = openvino.Core()
            self._model = self._core.read_model(str(model_path))
        except RuntimeError as error:
            raise FaceDetectorError(f"face model {model_path} could not be loaded: {error}") from None
        self._compiled: dict[tuple[int, int], Any] = {}  # per padded input size

    def detect(self, image: Image) -> list[Face]:
        height, width = image.shape[:2]
        padded = (-(-height // PAD) * PAD, -(-width // PAD) * PAD)
        tensor = np.zeros((1, 3, *padded), np.float32)
        tensor[0, :, :height, :width] = image.transpose(2, 0, 1)
        outputs = self._request(padded).infer({0: tensor})
        named = {name: value for port, value in outputs.items() for name in port.get_names()}
        boxes, scores = _decode(named, padded)
        keep = np.flatnonzero(scores >= self.min_score)
        candidates: list[Box] = [_clipped(boxes[i], width, height) for i in keep]
        kept = suppressed(candidates, [float(scores[i]) for i in keep], self.min_score)
        return [Face(candidates[i], float(scores[keep[i]])) for i in kept]

    def _request(self, padded: tuple[int, int]) -> Any:
        if padded not in self._compiled:
            model = self._model.clone()
            model.reshape([1, 3, *padded])
            self._compiled[padded] = self._core.compile_model(model, "CPU").create_infer_request()
        return self._compiled[padded]


def _decode(outputs: dict[str, Floats], padded: tuple[int, int]) -> tuple[Floats, Floats]:
    """Corner boxes and scores of every cell of every stride."""
    all_boxes, all_scores = [], []
    for stride in STRIDES:
        rows, cols = padded[0] // stride, padded[1] // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0, 1)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)
        cell_y, cell_x = np.divmod(np.arange(rows * cols), cols)
        centre_x, centre_y = (cell_x + bbox[:, 0]) * stride, (cell_y + bbox[:, 1]) * stride
        half_w, half_h = np.exp(bbox[:, 2]) * stride / 2, np.exp(bbox[:, 3]) * stride / 2
        all_boxes.append(np.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1))
        all_scores.append(np.sqrt(cls * obj))
    return np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32)


def _clipped(box: Floats, width: int, height: int) -> Box:
    return (max(0.0, float(box[0])), max(0.0, float(box[1])), min(float(width), float(box[2])),
            min(float(height), float(box[3])))  # fmt: skip
