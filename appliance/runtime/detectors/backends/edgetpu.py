"""Coral Edge TPU backend: TFLite models compiled for the Edge TPU, run through the
libedgetpu.so.1 delegate on the device named in the profile."""

from __future__ import annotations

import ctypes
import logging
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance.config.backends import BACKENDS
from appliance.runtime.detectors.backends.tflite import EDGETPU_OP, TfliteDetector
from appliance.runtime.detectors.base import DetectorError, import_backend
from appliance.runtime.detectors.heads import Shape
from appliance.runtime.detectors.registry import Backend, register

log = logging.getLogger(__name__)
LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


def delegate_options(device: str) -> dict[str, str]:
    """libedgetpu options for a profile device name: 'auto', 'usb', 'usb:0', 'pci:0'."""
    return {} if device == "auto" else {"device": device}


class EdgeTpuDetector(TfliteDetector):
    backend = "edgetpu"
    extra = "edgetpu"

    def delegates(self) -> list[Any]:
        try:
            load_delegate = import_backend("ai_edge_litert.interpreter", self.backend, self.extra).load_delegate
        except DetectorError:
            load_delegate = import_backend("tflite_runtime.interpreter", self.backend, self.extra).load_delegate
        library = LIBRARY.get(platform.system(), LIBRARY["Linux"])
        try:
            ctypes.CDLL(library)  # a missing runtime fails here, before the delegate is built
            return [load_delegate(library, delegate_options(self.config.device))]
        except (OSError, ValueError, RuntimeError) as error:
            raise DetectorError(
                f"cannot open the Edge TPU '{self.config.device}' through {library}: {error}. "
                "Install the Edge TPU runtime (Coral's libedgetpu1-std package), plug in the "
                "accelerator, and check that this user may access it (group plugdev or apex)"
            ) from None

    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        if EDGETPU_OP.encode() not in model_path.read_bytes():
            log.warning("%s is not compiled for the Edge TPU: it will run on the CPU", model_path)
        return super().load(model_path)

    def _load_error(self, model_path: Path, error: Exception) -> str:
        return f"the Edge TPU cannot load {model_path}: {error}"


BACKEND = register(Backend(spec=BACKENDS["edgetpu"], factory=EdgeTpuDetector, owns_accelerator=True))
