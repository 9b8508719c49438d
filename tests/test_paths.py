"""Every path in a profile is made absolute once, by the loader, relative to the file that wrote
it, so `extends:` can never make two parts of the runtime disagree."""

from __future__ import annotations

from pathlib import Path

from appliance.config import load_profile
from appliance.runtime.detectors import create_detector


def test_paths_are_relative_to_the_file_that_wrote_them(tmp_path: Path, data: Path) -> None:
    (tmp_path / "common" / "models").mkdir(parents=True)
    model = tmp_path / "common" / "models" / "yolox.onnx"
    model.symlink_to((data / "models/yolox_nano_onnx/yolox_nano.onnx").resolve())
    (tmp_path / "common" / "base.yaml").write_text(
        "detector: {backend: onnxruntime, model: {path: models/yolox.onnx}}\nstorage: {data_dir: var}\n"
    )
    (tmp_path / "profile.yaml").write_text(
        "extends: common/base.yaml\ndevice: {id: site}\n"
        "cameras: [{id: a, source: videos/a.avi}, {id: b, source: rtsp://cam/s}, {id: c, source: /dev/video0}]\n"
    )
    profile = load_profile(tmp_path / "profile.yaml").profile
    assert profile.detector.model.path == str(model)
    assert profile.storage.data_dir == str(tmp_path / "common" / "var")
    assert [c.source for c in profile.cameras] == [str(tmp_path / "videos/a.avi"), "rtsp://cam/s", "/dev/video0"]
    assert create_detector(profile.detector).model_path == model  # the runtime takes it as it is


def test_absolute_and_home_paths_stay_as_written(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("device: {id: t}\nstorage: {data_dir: ~/appliance}\n")
    profile = load_profile(tmp_path / "p.yaml").profile
    assert profile.storage.data_dir == str(Path.home() / "appliance")
    assert profile.ota.inbox == str(Path.home() / "appliance" / "ota" / "inbox")  # derived from data_dir
    assert profile.ota.state_dir == str(Path.home() / "appliance" / "ota" / "state")


def test_ota_folders_set_in_the_profile_are_kept(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("device: {id: t}\nstorage: {data_dir: /data}\nota: {inbox: drop}\n")
    profile = load_profile(tmp_path / "p.yaml").profile
    assert profile.ota.inbox == str(tmp_path / "drop") and profile.ota.state_dir == "/data/ota/state"


def test_a_shipped_profile_is_found_by_name_from_anywhere(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("extends: x86.yaml\ndevice: {id: site}\n")
    profile = load_profile(tmp_path / "site.yaml").profile
    assert profile.detector.backend == "openvino" and profile.device.id == "site"
