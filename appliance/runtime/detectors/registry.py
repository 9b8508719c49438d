"""The detector backends, as they register themselves (see backends/__init__.py)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.config.backends import BackendSpec
from appliance.config.model import DetectorConfig

if TYPE_CHECKING:
    from appliance.runtime.detectors.base import Detector

Factory = Callable[[DetectorConfig, "Path | None", "Path | None"], "Detector"]


@dataclass(frozen=True)
class Backend:
    spec: BackendSpec  # what profiles may ask of it (appliance.config.backends)
    factory: Factory  # (config, absolute model path or None, cache folder) -> Detector
    owns_accelerator: bool  # opened once per device: one detector service serves every camera

    @property
    def name(self) -> str:
        return self.spec.name


_registered: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    _registered[backend.name] = backend
    return backend


@cache
def backends() -> Mapping[str, Backend]:
    """Every backend, by name: each module of the backends package, imported (their runtimes
    are imported only when a detector is created)."""
    from appliance.runtime.detectors import backends as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_registered.items()))


def find_backend(name: str) -> Backend | None:
    """The backend of that name, importing its module alone (each backend's module is named as
    the backend), or None when there is none."""
    if name not in _registered and name.isidentifier():
        try:
            importlib.import_module(f"{__package__}.backends.{name}")
        except ModuleNotFoundError:
            return None
    return _registered.get(name)


def backend_info(name: str) -> Backend:
    backend = find_backend(name)
    if backend is None:
        raise KeyError(name)
    return backend
