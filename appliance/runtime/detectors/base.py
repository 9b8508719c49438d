"""The detector interface: frame in, person detections out, in three timed stages."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from appliance.config.model import DetectorConfig
from appliance.runtime.detectors.heads import HEADS, Head, Shape, infer_architecture
from appliance.runtime.detectors.processing import (
    Floats,
    Placement,
    nchw_tensor,
    nhwc_tensor,
    pixel_table,
)
from appliance.runtime.types import Detection, Image

DEFAULT_INPUT_SIZE = {"yolov8": 640, "yolox": 416, "ssd": 300, "ssd-postprocess": 300}


class DetectorError(Exception):
    """A detector that cannot start or run; the message says why and what to do."""


def import_backend(module: str, backend: str, extra: str) -> ModuleType:
    """Import a backend's runtime package, or explain which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DetectorError(
            f"the '{backend}' detector backend needs the Python package '{module.split('.')[0]}', "
            f"which is not installed ({error}); install the '{extra}' extra: "
            f"scripts/setup.sh --extra {extra}, or pip install 'appliance[{extra}]'"
        ) from None


class Detector(ABC):
    """Finds people in frames. `detect` is `prepare`, `infer`, `decode`, each timed on its own."""

    backend: ClassVar[str]
    queued_seconds: ClassVar[float] = 0.0  # a detector of the worker's own never waits for other cameras

    def __init__(self, config: DetectorConfig, model_path: Path | None, cache_dir: Path | None = None) -> None:
        self.config = config
        self.model_path = model_path
        self.cache_dir = cache_dir  # where a backend may keep what it derives from the model

    @abstractmethod
    def prepare(self, image: Image) -> tuple[Any, Placement]:
        """The network input for a frame, and how the frame was placed in it."""

    @abstractmethod
    def infer(self, tensor: Any) -> Sequence[Floats]:
        """Run the model."""

    @abstractmethod
    def decode(self, outputs: Sequence[Floats], placement: Placement) -> list[Detection]:
        """Person detections in frame pixels, thresholded and suppressed."""

    def detect(self, image: Image) -> list[Detection]:
        tensor, placement = self.prepare(image)
        return self.decode(self.infer(tensor), placement)

    def detect_all(self, images: Sequence[Image]) -> list[list[Detection]]:
        """The detections of several frames (the shared service's cameras, at once); a backend
        that runs several inferences at a time overrides it."""
        return [self.detect(image) for image in images]

    def describe(self) -> str:
        model = self.model_path.name if self.model_path else "built-in"
        return f"{self.backend} ({model})"

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model and any accelerator."""


class NetworkDetector(Detector):
    """A neural network run by a backend, pre- and post-processed by the head of its family."""

    nhwc: ClassVar[bool] = False  # input layout: NHWC (TFLite) or NCHW
    input_dtype: npt.DTypeLike = np.float32
    input_quantization: tuple[float, int] | None = None  # (scale, zero point) of integer inputs

    def __init__(self, config: DetectorConfig, model_path: Path | None, cache_dir: Path | None = None) -> None:
        super().__init__(config, model_path, cache_dir)
        if model_path is None:
            raise DetectorError(f"the '{self.backend}' backend needs detector.model.path")
        input_size, output_shapes = self.load(model_path)
        self.head = self._head(input_size, output_shapes)
        head = self.head
        self.pixel_table = pixel_table(head.value_scale, head.value_offset, self.input_dtype, self.input_quantization)
        self._input = np.empty((1, 3, head.height, head.width), dtype=np.float32)

    @abstractmethod
    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        """Load the model; return its input (width, height) if fixed, and its output shapes."""

    def _head(self, input_size: tuple[int, int] | None, output_shapes: Sequence[Shape]) -> Head:
        architecture = self.config.model.architecture
        if architecture == "auto":
            architecture = infer_architecture(output_shapes)
        elif architecture == "ssd" and len(output_shapes) == 4:
            architecture = "ssd-postprocess"
        if architecture not in HEADS:
            raise DetectorError(
                f"cannot tell the layout of {self.model_path} from its outputs "
                f"{[list(s) for s in output_shapes]}; set detector.model.architecture "
                "(yolov8, yolox or ssd)"
            )
        default = DEFAULT_INPUT_SIZE[architecture]
        width, height = input_size or self.config.input_size or (default, default)
        config = self.config
        return HEADS[architecture](width, height, config.class_id, config.min_score, config.nms_iou)

    def prepare(self, image: Image) -> tuple[Any, Placement]:
        canvas, placement = self.head.place(image)
        return self.tensor(canvas), placement

    def tensor(self, canvas: Image) -> Any:
        """The canvas as a batch of one in the model's layout, colour order and value range.
        An NCHW tensor lives in a buffer reused by the next call."""
        if self.nhwc:
            return nhwc_tensor(canvas, self.head.rgb, self.pixel_table)
        return nchw_tensor(canvas, self.head.rgb, self.pixel_table, self._input)

    def decode(self, outputs: Sequence[Floats], placement: Placement) -> list[Detection]:
        return self.head.decode(outputs, placement)

    def describe(self) -> str:
        head = self.head
        return f"{self.backend} {head.architecture} {head.width}x{head.height} ({self.model_path})"


def static_size(shape: Shape, nhwc: bool) -> tuple[int, int] | None:
    """(width, height) of a 4-D image input shape, None when either is dynamic."""
    height, width = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None
