"""Round trip: a profile loaded and saved unchanged keeps its bytes; an edit keeps every comment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.config import load_profile
from appliance.config.yamlio import ProfileDocument
from tests.conftest import SHIPPED_PROFILES, WriteFiles

TRICKY = """
---
# Head comment: describes the file.

device:
    id: lobby-01            # four-space indentation on purpose
    name: 'Lobby: north'    # single-quoted, with a colon
cameras:
-   id: cam1               # sequence dash at the parent's column
    source: "rtsp://192.168.1.10:554/stream1"
    roi: [[0, 0], [10, 0], [10, 10]]   # flow list
    tags:
    -   indoor
    -   "north"

# A comment between sections.
areas:
-   {id: hall, cameras: [cam1]}
distancing:
    threshold_cm: 1.5e2     # scientific notation stays as written
    person_height_cm: 170.0
"""


@pytest.mark.parametrize("path", SHIPPED_PROFILES, ids=lambda p: p.name)
def test_shipped_profile_saves_to_identical_bytes(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    ProfileDocument.load(path).save(copy)
    assert copy.read_bytes() == path.read_bytes()


def test_unusual_formatting_survives_a_round_trip(write_files: WriteFiles) -> None:
    path = write_files(p__yaml=TRICKY)
    original = path.read_bytes()
    ProfileDocument.load(path).save()
    assert path.read_bytes() == original
    assert load_profile(path).profile.cameras[0].tags == ("indoor", "north")


COMPACT = """
device:
  id: lobby-01
cameras:
- id: cam1
  source: /dev/video0
  tags:
  - indoor
"""


def test_compact_sequences_survive_a_round_trip(write_files: WriteFiles) -> None:
    path = write_files(p__yaml=COMPACT)
    assert ProfileDocument.load(path).dumps() == path.read_text()


def test_an_edit_keeps_every_comment_and_the_rest_of_the_layout(write_files: WriteFiles) -> None:
    path = write_files(p__yaml=TRICKY)
    original = path.read_text()
    document = ProfileDocument.load(path)
    document.data["cameras"][0]["fps_cap"] = 5
    document.data["distancing"]["threshold_cm"] = 200
    document.save()

    edited = path.read_text()
    for comment in re.findall(r"#[^\n]*", original):
        assert comment in edited
    changed = [line for line in edited.splitlines() if line not in original.splitlines()]
    assert changed == [
        "    fps_cap: 5",
        "    threshold_cm: 200       # scientific notation stays as written",
    ]
    profile = load_profile(path).profile
    assert profile.cameras[0].fps_cap == 5
    assert profile.distancing.threshold_cm == 200


def test_save_is_atomic_and_leaves_no_temporary_file(write_files: WriteFiles) -> None:
    path = write_files(p__yaml=TRICKY)
    ProfileDocument.load(path).save()
    assert sorted(p.name for p in path.resolve().parent.iterdir()) == ["p.yaml"]
