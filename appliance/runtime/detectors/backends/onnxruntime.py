"""ONNX Runtime backend: YOLOv8/YOLO11, YOLOX and SSD ONNX models on the CPU (or CUDA)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance.config.backends import BACKENDS
from appliance.runtime.detectors.base import (
    DetectorError,
    NetworkDetector,
    import_backend,
    static_size,
)
from appliance.runtime.detectors.heads import Shape
from appliance.runtime.detectors.processing import Floats
from appliance.runtime.detectors.registry import Backend, register


class OnnxRuntimeDetector(NetworkDetector):
    backend = "onnxruntime"

    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        ort = import_backend("onnxruntime", self.backend, "onnx")
        options = ort.SessionOptions()
        if self.config.threads:
            options.intra_op_num_threads = self.config.threads
            options.inter_op_num_threads = 1
        providers: list[str | tuple[str, dict[str, int]]] = ["CPUExecutionProvider"]
        if self.config.device not in ("auto", "cpu", "CPU"):
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(self.config.device)}))
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise DetectorError(f"ONNX Runtime cannot load {model_path}: {error}") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        return static_size(model_input.shape, nhwc=False), [o.shape for o in self.session.get_outputs()]

    def infer(self, tensor: Any) -> Sequence[Floats]:
        outputs: Sequence[Floats] = self.session.run(None, {self.input_name: tensor})
        return outputs


BACKEND = register(Backend(spec=BACKENDS["onnxruntime"], factory=OnnxRuntimeDetector, owns_accelerator=False))
