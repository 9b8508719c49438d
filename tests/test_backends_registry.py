"""Detector backends: their facts for profiles in one table (appliance.config.backends), their
implementations registered by their modules. The schema, the registry, the rules, the
shared-detector choice and the package extras all follow the table."""

from __future__ import annotations

import json
import tomllib

import pytest

from appliance.config import ProfileError, load_profile
from appliance.config.backends import BACKENDS, COMMON_SETTINGS
from appliance.runtime.detectors.registry import backends
from tests.conftest import REPO, WriteFiles


def test_the_schema_offers_exactly_the_registered_backends() -> None:
    schema = json.loads((REPO / "schemas" / "profile.schema.json").read_text())
    detector = schema["$defs"]["detector"]["properties"]
    assert sorted(detector["backend"]["enum"]) == sorted(backends()) == sorted(BACKENDS)
    assert all(backend.spec is BACKENDS[name] for name, backend in backends().items())
    settings = set(detector) - COMMON_SETTINGS
    assert set().union(*(b.settings for b in BACKENDS.values())) == settings  # every setting has a user


def test_every_backend_extra_is_a_package_extra() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for backend in BACKENDS.values():
        assert backend.extra is None or backend.extra in extras, backend.name


def test_only_accelerators_opened_once_share_a_detector_process() -> None:
    assert {b.name for b in backends().values() if b.owns_accelerator} == {"edgetpu", "tensorrt"}


def test_model_files_follow_the_backend_declaration(write_files: WriteFiles) -> None:
    path = write_files(p__yaml="device: {id: t}\ndetector: {backend: tflite, model: {path: m.onnx}}\n")
    with pytest.raises(ProfileError, match=r"the 'tflite' backend loads \.tflite files, not 'm\.onnx'"):
        load_profile(path)


def test_a_setting_the_chosen_backend_ignores_is_refused(write_files: WriteFiles) -> None:
    path = write_files(p__yaml="device: {id: t}\ndetector: {backend: onnxruntime, model: {path: m.onnx}, "
                       "performance_hint: throughput}\n")  # fmt: skip
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    assert str(error.value) == (
        "p.yaml:2:75 detector.performance_hint: the 'onnxruntime' backend does not use this setting (used by: openvino)"
    )
