"""OpenVINO backend: OpenVINO IR (Open Model Zoo SSD detectors) and ONNX YOLO models."""

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
from appliance.runtime.types import Detection, Image

PRECISION_HINTS = {"fp32": "f32", "fp16": "f16"}


class OpenVinoDetector(NetworkDetector):
    backend = "openvino"

    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        ov = import_backend("openvino", self.backend, "openvino")
        core = ov.Core()
        device = self.config.device
        if device == "auto":
            device = "CPU" if core.available_devices == ["CPU"] else "AUTO"
        try:
            model = core.read_model(str(model_path))
            self._resize(model)
            compiled = core.compile_model(model, device, self._properties(device))
        except RuntimeError as error:
            devices = ", ".join(core.available_devices)
            size = "" if self.config.input_size is None else " at {}x{}".format(*self.config.input_size)
            raise DetectorError(
                f"OpenVINO cannot run {model_path}{size} on '{device}' (devices here: {devices}): "
                f"{str(error).strip().splitlines()[0]}"
            ) from None
        parallel = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.requests = [compiled.create_infer_request() for _ in range(parallel)]
        self.request = self.requests[0]
        self.device = device
        input_shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else -1 for d in input_shape]
        outputs = [[d.get_length() if d.is_static else -1 for d in o.get_partial_shape()] for o in model.outputs]
        return static_size(dims, nhwc=False), outputs

    def _resize(self, model: Any) -> None:
        """Reshapes the network to `input_size` where set: Open Model Zoo's SSD detectors take any
        input size, and one with the camera's aspect ratio sees small people better."""
        if self.config.input_size is None:
            return
        width, height = self.config.input_size
        model.reshape({model.inputs[0].any_name: [1, 3, height, width]})

    def _properties(self, device: str) -> dict[str, str]:
        properties = {"PERFORMANCE_HINT": self.config.performance_hint.upper()}
        if device == "CPU":
            # Each camera worker has its own detector: pinned threads would pile onto the same cores.
            properties["ENABLE_CPU_PINNING"] = "NO"
        if self.config.threads:
            properties["INFERENCE_NUM_THREADS"] = str(self.config.threads)
        if self.config.precision in PRECISION_HINTS and self.config.precision != "fp32":
            properties["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[self.config.precision]
        return properties

    def infer(self, tensor: Any) -> Sequence[Floats]:
        self.request.infer({0: tensor})
        return [self.request.get_output_tensor(i).data for i in range(len(self.request.model_outputs))]

    def detect_all(self, images: Sequence[Image]) -> list[list[Detection]]:
        """Up to as many frames at once as the compiled model runs in parallel (its streams: one
        with the latency hint, several with the throughput hint)."""
        if len(self.requests) < 2:
            return super().detect_all(images)
        found: list[list[Detection]] = []
        for start in range(0, len(images), len(self.requests)):
            started = []
            for request, image in zip(self.requests, images[start : start + len(self.requests)], strict=False):
                tensor, placement = self.prepare(image)
                request.start_async({0: tensor})  # copied into the request: the next prepare may reuse the buffer
                started.append((request, placement))
            for request, placement in started:
                request.wait()
                outputs = [request.get_output_tensor(i).data for i in range(len(request.model_outputs))]
                found.append(self.decode(outputs, placement))
        return found

    def describe(self) -> str:
        parallel = f", {len(self.requests)} at once" if len(self.requests) > 1 else ""
        return f"{super().describe()} on {self.device}, {self.config.performance_hint} hint{parallel}"


BACKEND = register(Backend(spec=BACKENDS["openvino"], factory=OpenVinoDetector, owns_accelerator=False))
