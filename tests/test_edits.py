"""The named edits of the profile: each applied to a real profile file that extends another, with
the one rule for entries defined in the extended file, and comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import Profile, load_profile
from appliance.config.edits import (
    AddEntry,
    EditError,
    PatchEntry,
    PatchProfile,
    ProfileEdit,
    RemoveEntry,
    SetCalibration,
    SetCameraEnabled,
    SetRoi,
)
from appliance.config.yamlio import ProfileDocument

BASE = """\
device: {id: base}
cameras:
  - {id: inherited, source: "rtsp://user:pw-1234@cam.local/stream"}
"""
PROFILE = """\
extends: base.yaml
# the lobby appliance
cameras:
  - id: inherited
    source: "rtsp://user:pw-1234@cam.local/stream"
  - id: door          # the front door
    source: door.avi
areas:
  - {id: hall, cameras: [door]}
"""
CALIBRATION = (((0.0, 0.0), (0.0, 0.0)), ((100.0, 0.0), (100.0, 0.0)), ((100.0, 100.0), (100.0, 100.0)),
               ((0.0, 100.0), (0.0, 100.0)))  # fmt: skip


def edited(folder: Path, edit: ProfileEdit, profile: str = PROFILE) -> str:
    (folder / "base.yaml").write_text(BASE)
    path = folder / "profile.yaml"
    path.write_text(profile)
    document = ProfileDocument.load(path)
    edit.apply(document.data, load_profile(path))
    return document.dumps()


def refusal(folder: Path, edit: ProfileEdit, profile: str = PROFILE) -> str:
    with pytest.raises(EditError) as refused:
        edited(folder, edit, profile)
    return refused.value.code


def test_an_entry_of_the_extended_file_is_changed_there_by_every_edit(tmp_path: Path) -> None:
    """The camera is in base.yaml only: enabling, patching, calibrating or removing it here is
    refused with one code and one message, whichever transport asked."""
    only_in_base = "extends: base.yaml\ndevice: {id: lobby}\n"  # a list replaces the base's: no cameras here
    for edit in (SetCameraEnabled("inherited", False), PatchEntry("cameras", "inherited", {"fps_cap": 2}),
                 SetCalibration("inherited", CALIBRATION), SetRoi("inherited", None),
                 RemoveEntry("cameras", "inherited")):  # fmt: skip
        assert refusal(tmp_path, edit, only_in_base) == "defined_elsewhere", edit.describe()
    for edit in (SetCameraEnabled("nowhere", True), RemoveEntry("areas", "nowhere")):
        assert refusal(tmp_path, edit) == "not_found"


def test_edits_keep_comments_and_write_what_they_name(tmp_path: Path) -> None:
    text = edited(tmp_path, SetCameraEnabled("door", False))
    assert "# the front door" in text and "enabled: false" in text
    calibrated = load_profile_text(tmp_path, edited(tmp_path, SetCalibration("door", CALIBRATION)))
    assert calibrated.camera("door").distance.method == "calibrated"
    assert len(calibrated.camera("door").distance.calibration or ()) == 4
    roi = load_profile_text(tmp_path, edited(tmp_path, SetRoi("door", ((0, 0), (50, 0), (50, 50)))))
    assert roi.camera("door").roi == ((0, 0), (50, 0), (50, 50))
    assert "hall" not in edited(tmp_path, RemoveEntry("areas", "hall"))


def test_refusals_name_their_reason(tmp_path: Path) -> None:
    assert refusal(tmp_path, AddEntry("cameras", {"id": "door", "source": "x.avi"})) == "exists"
    assert refusal(tmp_path, PatchEntry("cameras", "door", {"id": "porch"})) == "id_changed"
    assert refusal(tmp_path, AddEntry("cameras", {"id": "new", "source": "rtsp://a:********@h/s"})) == "masked_secret"
    assert refusal(tmp_path, PatchProfile({"mqtt": {"password": "********"}})) == "masked_secret"


def test_a_masked_secret_sent_back_as_shown_stays_the_stored_one(tmp_path: Path) -> None:
    shown = "rtsp://user:********@cam.local/stream"
    text = edited(tmp_path, PatchEntry("cameras", "inherited", {"source": shown, "fps_cap": 3}))
    assert "pw-1234" in text and "********" not in text and "fps_cap: 3" in text


def load_profile_text(folder: Path, text: str) -> Profile:
    path = folder / "edited.yaml"
    path.write_text(text)
    return load_profile(path).profile
