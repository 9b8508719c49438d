"""The Ultra-Light-Fast RFB-640 face detector trained on faces and masked faces (MIT): one pass
tells each face and whether it wears a mask. Input 640x480 RGB, (x - 127) / 128; outputs the
softmaxed scores of (background, face, masked face) and corner boxes in 0..1 for 17640 priors,
suppressed here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from appliance.runtime.faces.base import Face, FaceDetector, load_onnx, register, suppressed
from appliance.runtime.types import Box, Image

INPUT_SIZE = (640, 480)
FACE, MASKED = 1, 2


@register
class RfbMaskedFaceDetector(FaceDetector):
    architecture = "rfb-masked-face"
    tells_masks = True

    def __init__(self, model_path: Path, min_score: float) -> None:
        super().__init__(model_path, min_score)
        self._net = load_onnx(model_path)

    def detect(self, image: Image) -> list[Face]:
        height, width = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, 1 / 128, INPUT_SIZE, (127, 127, 127), swapRB=True)
        self._net.setInput(blob)
        scores, corners = self._net.forward(self._net.getUnconnectedOutLayersNames())
        if scores.shape[-1] != 3:
            scores, corners = corners, scores
        scores, corners = scores[0], corners[0]
        best = np.maximum(scores[:, FACE], scores[:, MASKED])
        keep = np.flatnonzero(best >= self.min_score)
        boxes: list[Box] = [(float(c[0] * width), float(c[1] * height), float(c[2] * width), float(c[3] * height))
                            for c in corners[keep]]  # fmt: skip
        kept = suppressed(boxes, [float(best[i]) for i in keep], self.min_score)
        return [
            Face(boxes[i], float(best[keep[i]]), bool(scores[keep[i], MASKED] > scores[keep[i], FACE])) for i in kept
        ]
