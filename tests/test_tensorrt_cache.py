"""TensorRT engine cache: keyed by model hash, GPU and TensorRT version; written atomically.

No GPU or TensorRT here: the engine build itself is tested up to the missing package
(tests/test_detectors.py); this file tests the cache the backend relies on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from appliance.runtime.detectors.backends.tensorrt import EngineCache, EngineKey

KEY = EngineKey(
    "d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a",
    "NVIDIA GeForce RTX 3060",
    "86",
    "10.3.0",
    "fp16",
)


def test_file_name_carries_every_part_of_the_key() -> None:
    assert KEY.file_name == "d39bee73564e3380-nvidia-geforce-rtx-3060-sm86-trt10.3.0-fp16.engine"


def test_any_change_of_model_gpu_version_or_precision_is_another_engine() -> None:
    variants = [
        replace(KEY, model_sha256="0" * 64),
        replace(KEY, gpu_name="NVIDIA Jetson Nano"),
        replace(KEY, compute_capability="53"),
        replace(KEY, tensorrt_version="10.4.0"),
        replace(KEY, precision="fp32"),
    ]
    names = {KEY.file_name, *(v.file_name for v in variants)}
    assert len(names) == 6


def test_store_then_load_round_trips_and_leaves_no_partial_file(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    assert cache.load(KEY) is None
    path = cache.store(KEY, b"serialized engine")
    assert path.parent == tmp_path / "engines"
    assert cache.load(KEY) == b"serialized engine"
    assert [p.name for p in (tmp_path / "engines").iterdir()] == [KEY.file_name]


def test_an_engine_for_another_tensorrt_version_is_not_used(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    cache.store(replace(KEY, tensorrt_version="8.6.1"), b"old engine")
    assert cache.load(KEY) is None


def test_discard_removes_a_stale_engine(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    cache.store(KEY, b"engine that no longer deserializes")
    cache.discard(KEY)
    cache.discard(KEY)  # discarding twice is harmless
    assert cache.load(KEY) is None
