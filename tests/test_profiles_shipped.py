"""Every profile we ship validates, and the CLI agrees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.config import load_profile
from appliance.models import sha256_of
from tests.conftest import PROFILES, REPO, SHIPPED_PROFILES, run_cli

DEVICE_PROFILES = [
    "x86.yaml",
    "x86-openvino.yaml",
    "coral.yaml",
    "jetson-nano.yaml",
    "x86-gpu-tensorrt.yaml",
]


def test_every_device_profile_is_shipped() -> None:
    assert {p.name for p in SHIPPED_PROFILES} >= set(DEVICE_PROFILES)


@pytest.mark.parametrize("path", SHIPPED_PROFILES, ids=lambda p: p.name)
def test_shipped_profile_validates(path: Path) -> None:
    loaded = load_profile(path)
    assert loaded.profile.device.id


@pytest.mark.parametrize("name", DEVICE_PROFILES)
def test_device_profiles_extend_the_base(name: str) -> None:
    loaded = load_profile(PROFILES / name)
    assert [f.name for f in loaded.files] == ["base.yaml", name]
    assert loaded.profile.mqtt.discovery.prefix == "homeassistant"


def test_cli_validates_all_shipped_profiles() -> None:
    result = run_cli("validate", *(str(p.relative_to(PROFILES.parent)) for p in SHIPPED_PROFILES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": valid (") == len(SHIPPED_PROFILES)


def test_default_profile_runs_the_shipped_model_with_its_digest_pinned() -> None:
    detector = load_profile(PROFILES / "x86.yaml").profile.detector
    assert detector.backend == "openvino"
    model = Path(detector.model.path or "")
    assert model.is_relative_to(REPO / "models") and sha256_of(model) == detector.model.sha256
    for name in ("x86.yaml", "x86-openvino.yaml"):
        assert load_profile(PROFILES / name).profile.detector.model == detector.model


def test_every_shipped_profile_hides_faces_with_the_shipped_face_model() -> None:
    for path in SHIPPED_PROFILES:
        faces = load_profile(path).profile.anonymizer.faces
        assert faces.enabled, path
        model = Path(faces.model.path or "")
        assert model.is_relative_to(REPO / "models") and sha256_of(model) == faces.model.sha256, path


def test_shipped_model_files_match_their_listed_digests_and_licence() -> None:
    listing = (REPO / "models" / "README.md").read_text()
    files = [f for f in (REPO / "models").rglob("*") if f.is_file() and f.suffix in (".xml", ".bin", ".onnx")]
    assert files
    for file in files:
        assert f"| `{file.relative_to(REPO / 'models')}` | {file.stat().st_size} | `{sha256_of(file)}` |" in listing
        folder = REPO / "models" / file.relative_to(REPO / "models").parts[0]
        assert (folder / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_accelerated_profiles_pick_their_backends() -> None:
    backends = {name: load_profile(PROFILES / name).profile.detector.backend for name in DEVICE_PROFILES}
    assert backends == {
        "x86.yaml": "openvino",
        "x86-openvino.yaml": "openvino",
        "coral.yaml": "edgetpu",
        "jetson-nano.yaml": "tensorrt",
        "x86-gpu-tensorrt.yaml": "tensorrt",
    }


def test_the_main_commands_profile_extends_the_shipped_default_from_its_own_folder(tmp_path: Path) -> None:
    """scripts/run.sh (the README's main command) writes var/demo.yaml with
    `extends: ../profiles/x86.yaml`: outside its own folder, but a shipped profile."""
    script = (REPO / "scripts" / "run.sh").read_text()
    match = re.search(r"cat > var/demo\.yaml <<YAML\n(.*?)\nYAML\n", script, re.DOTALL)
    assert match, "run.sh no longer writes var/demo.yaml"
    (tmp_path / "var").mkdir()
    (tmp_path / "profiles").symlink_to(PROFILES)
    (tmp_path / "var" / "demo.yaml").write_text(match[1])
    loaded = load_profile(tmp_path / "var" / "demo.yaml")
    assert loaded.files[0] == tmp_path / "var" / "../profiles/base.yaml"
    assert loaded.profile.cameras[0].source == str(tmp_path / "var" / "media" / "vtest.avi")
