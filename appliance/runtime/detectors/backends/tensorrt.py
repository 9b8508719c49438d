"""TensorRT backend: builds an engine from the ONNX model on first start (fp16 or fp32 from the
profile), caches it keyed by model hash, GPU and TensorRT version, and runs it with CUDA."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config.backends import BACKENDS
from appliance.config.model import DetectorConfig
from appliance.models import sha256_of
from appliance.runtime.detectors.base import DetectorError, NetworkDetector, import_backend
from appliance.runtime.detectors.heads import Shape
from appliance.runtime.detectors.processing import Floats
from appliance.runtime.detectors.registry import Backend, register

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class EngineKey:
    """What a serialized engine depends on: a change in any of these needs a new build."""

    model_sha256: str
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str

    @property
    def file_name(self) -> str:
        gpu = re.sub(r"[^a-z0-9]+", "-", self.gpu_name.lower()).strip("-")
        return (
            f"{self.model_sha256[:16]}-{gpu}-sm{self.compute_capability}"
            f"-trt{self.tensorrt_version}-{self.precision}.engine"
        )


class EngineCache:
    """Serialized engines in a folder, one file per key, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: EngineKey) -> Path:
        return self.folder / key.file_name

    def load(self, key: EngineKey) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.is_file() else None

    def store(self, key: EngineKey, engine: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        temporary = path.with_suffix(".partial")
        temporary.write_bytes(engine)
        temporary.replace(path)
        return path

    def discard(self, key: EngineKey) -> None:
        self.path(key).unlink(missing_ok=True)


class TensorRtDetector(NetworkDetector):
    backend = "tensorrt"

    def __init__(self, config: DetectorConfig, model_path: Path | None, cache_dir: Path | None = None) -> None:
        self.trt = import_backend("tensorrt", self.backend, "tensorrt")
        self.cudart = _import_cudart()
        super().__init__(config, model_path, cache_dir)

    def load(self, model_path: Path) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        self.device = _device_index(self.config.device)
        _check(self.cudart.cudaSetDevice(self.device), f"select CUDA device {self.device}")
        key = self._engine_key(model_path)
        cache = EngineCache(self.cache_dir or model_path.parent / "engines")
        logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(logger)
        engine = self._deserialize(cache.load(key))
        if engine is None:
            cache.discard(key)
            serialized = self._build(model_path, logger)
            log.info("TensorRT engine cached at %s", cache.store(key, serialized))
            engine = self._deserialize(serialized)
        if engine is None:
            raise DetectorError(f"TensorRT could not load the engine it built from {model_path}")
        self.engine, self.context = engine, engine.create_execution_context()
        return self._bind()

    def _engine_key(self, model_path: Path) -> EngineKey:
        error, properties = self.cudart.cudaGetDeviceProperties(self.device)
        _check((error,), "read the GPU's properties")
        name = properties.name.decode() if isinstance(properties.name, bytes) else str(properties.name)
        return EngineKey(
            sha256_of(model_path),
            name,
            f"{properties.major}{properties.minor}",
            self.trt.__version__,
            self.config.precision,
        )

    def _deserialize(self, serialized: bytes | None) -> Any:
        return self.runtime.deserialize_cuda_engine(serialized) if serialized else None

    def _build(self, model_path: Path, logger: Any) -> bytes:
        trt = self.trt
        log.info(
            "building a TensorRT %s engine from %s (this takes minutes on first start)",
            self.config.precision,
            model_path,
        )
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(model_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise DetectorError(f"TensorRT cannot parse {model_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.config.precision == "fp16":
            if not builder.platform_has_fast_fp16:
                log.warning("this GPU has no fast fp16: the fp16 engine may be slow")
            config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise DetectorError(f"TensorRT failed to build an engine from {model_path} (see the log above)")
        return bytes(serialized)

    def _bind(self) -> tuple[tuple[int, int] | None, Sequence[Shape]]:
        """Allocate device memory for every input and output and give it to the context."""
        trt, engine = self.trt, self.engine
        _, self.stream = self.cudart.cudaStreamCreate()
        self.inputs: list[tuple[int, Floats]] = []
        self.outputs: list[tuple[int, Floats]] = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(engine.get_tensor_shape(name))
            host = np.empty(shape, dtype=trt.nptype(engine.get_tensor_dtype(name)))
            error, pointer = self.cudart.cudaMalloc(host.nbytes)
            _check((error,), f"allocate {host.nbytes} bytes of GPU memory")
            self.context.set_tensor_address(name, pointer)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append((pointer, host))
        input_shape = self.inputs[0][1].shape
        return (int(input_shape[3]), int(input_shape[2])), [host.shape for _, host in self.outputs]

    def infer(self, tensor: Any) -> Sequence[Floats]:
        cudart, kinds = self.cudart, self.cudart.cudaMemcpyKind
        pointer, host = self.inputs[0]
        np.copyto(host, tensor)
        cudart.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kinds.cudaMemcpyHostToDevice, self.stream)
        if not self.context.execute_async_v3(self.stream):
            raise DetectorError("TensorRT inference failed")
        for pointer, host in self.outputs:
            cudart.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kinds.cudaMemcpyDeviceToHost, self.stream)
        _check(cudart.cudaStreamSynchronize(self.stream), "wait for the GPU")
        return [host.astype(np.float32, copy=False) for _, host in self.outputs]

    def close(self) -> None:
        for pointer, _ in (*self.inputs, *self.outputs):
            self.cudart.cudaFree(pointer)
        self.cudart.cudaStreamDestroy(self.stream)

    def describe(self) -> str:
        return f"{super().describe()} {self.config.precision} on CUDA device {self.device}"


def _import_cudart() -> Any:
    try:
        return import_backend("cuda.bindings.runtime", TensorRtDetector.backend, "tensorrt")
    except DetectorError:
        return import_backend("cuda.cudart", TensorRtDetector.backend, "tensorrt")


def _device_index(device: str) -> int:
    if device == "auto":
        return 0
    if not device.isdigit():
        raise DetectorError(f"detector.device '{device}' is not a CUDA device index such as '0'")
    return int(device)


def _check(result: tuple[Any, ...], action: str) -> None:
    """Raise when a cuda-python call returned an error code."""
    error = result[0]
    if int(error) != 0:
        raise DetectorError(f"CUDA could not {action}: {error!s}; is an NVIDIA GPU with its driver present?")


BACKEND = register(Backend(spec=BACKENDS["tensorrt"], factory=TensorRtDetector, owns_accelerator=True))
