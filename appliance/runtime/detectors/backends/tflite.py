"""TensorFlow Lite backend (ai-edge-litert, or tflite-runtime): SSD with
TFLite_Detection_PostProcess and YOLOv8 float or full-integer exports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

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

EDGETPU_OP = "edgetpu-custom-op"


def interpreter_class(backend: str, extra: str) -> Any:
    """ai-edge-litert's Interpreter, or tflite-runtime's where only that is installed."""
    try:
        return import_backend("ai_edge_litert.interpreter", backend, extra).Interpreter
    except DetectorError:
        try:
            return import_backend("tflite_runtime.interpreter", backend, extra).Interpreter
        except DetectorError:
            pass
        raise


class TfliteDetector(NetworkDetector):
    backend = "tflite"
    extra = "tflite"
    nhwc = True

    def delegates(self) -> list[Any]:
        """Hardware delegates to load the model with; none on the CPU."""
        return []

    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        interpreter = interpreter_class(self.backend, self.extra)
        try:
            self.interpreter = interpreter(
                model_path=str(model_path),
                num_threads=self.config.threads or None,
                experimental_delegates=self.delegates(),
            )
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as error:
            raise DetectorError(self._load_error(model_path, error)) from None
        self.input = self.interpreter.get_input_details()[0]
        self.input_dtype = self.input["dtype"]
        scale, zero_point = self.input["quantization"]
        self.input_quantization = (scale, zero_point) if scale else None
        self.outputs = sorted(self.interpreter.get_output_details(), key=lambda o: o["name"])
        input_shape = [int(d) for d in self.input["shape"]]
        return static_size(input_shape, nhwc=True), [[int(d) for d in o["shape"]] for o in self.outputs]

    def _load_error(self, model_path: Path, error: Exception) -> str:
        if EDGETPU_OP in str(error):
            return f"{model_path} is compiled for the Edge TPU: use detector.backend edgetpu"
        return f"TensorFlow Lite cannot load {model_path}: {error}"

    def infer(self, tensor: Any) -> Sequence[Floats]:
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return [self._dequantized(o) for o in self.outputs]

    def _dequantized(self, detail: dict[str, Any]) -> Floats:
        values = self.interpreter.get_tensor(detail["index"])
        scale, zero_point = detail["quantization"]
        if values.dtype == np.float32 or not scale:
            return cast(Floats, np.asarray(values, dtype=np.float32))
        return cast(Floats, ((values.astype(np.float32) - zero_point) * scale).astype(np.float32))


BACKEND = register(Backend(spec=BACKENDS["tflite"], factory=TfliteDetector, owns_accelerator=False))
