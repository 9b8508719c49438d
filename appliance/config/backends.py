"""What a profile may ask of each detector backend: its name in profiles, the package extra that
installs its runtime, the model files it loads, and the detector settings it reads beyond the
common ones. Plain data, so that checking a profile needs neither numpy nor any backend's
runtime. Each backend's module (appliance/runtime/detectors/backends/) registers its
implementation under the same name with these facts; tests/test_backends_registry.py keeps the
two, the schema and the package extras in step."""

from __future__ import annotations

from dataclasses import dataclass

# Detector keys every backend reads; the others are read only by the backends that list them.
COMMON_SETTINGS = frozenset({"backend", "model", "input_size", "class_id", "min_score", "nms_iou"})


@dataclass(frozen=True)
class BackendSpec:
    name: str  # detector.backend in profiles
    extra: str | None  # the package extra that installs its runtime; None: a default dependency
    model_suffixes: tuple[str, ...]  # files it loads
    model_required: bool  # False: it has a built-in model (OpenCV's HOG)
    settings: frozenset[str]  # detector keys it reads beyond COMMON_SETTINGS


_SPECS = (
    BackendSpec(name="edgetpu", extra="edgetpu", model_suffixes=(".tflite",), model_required=True,
                settings=frozenset({"threads", "device"})),
    BackendSpec(name="onnxruntime", extra="onnx", model_suffixes=(".onnx",), model_required=True,
                settings=frozenset({"threads", "device"})),
    BackendSpec(name="opencv", extra=None, model_suffixes=(".onnx",), model_required=False,
                settings=frozenset({"threads"})),
    BackendSpec(name="openvino", extra="openvino", model_suffixes=(".xml", ".onnx"), model_required=True,
                settings=frozenset({"threads", "device", "precision", "performance_hint"})),
    BackendSpec(name="tensorrt", extra="tensorrt", model_suffixes=(".onnx", ".engine", ".plan"), model_required=True,
                settings=frozenset({"device", "precision"})),
    BackendSpec(name="tflite", extra="tflite", model_suffixes=(".tflite",), model_required=True,
                settings=frozenset({"threads"})),
    BackendSpec(name="ultralytics", extra="ultralytics", model_suffixes=(".pt", ".onnx"), model_required=True,
                settings=frozenset({"device"})),
)  # fmt: skip
BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in _SPECS}
