"""Faces in the anonymizer: a face the person detector misses does not leave the device."""

from __future__ import annotations

import queue
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.config import load_profile
from appliance.config.model import Profile
from appliance.runtime.events import Snapshot
from appliance.runtime.faces import FaceDetectorError, create_face_detector
from appliance.runtime.processes import ChildSetup
from appliance.runtime.types import Image
from appliance.runtime.worker import CameraWorker, WorkerSpec, _face_detector
from tests.conftest import PROFILES

BUS = "stills/bus.jpg"
FACE = (116, 418, 154, 468)  # the face of the man on the left of bus.jpg, as YuNet-n finds it
CUT_AT = 172  # the image's right edge runs through his body: the person detector no longer sees him


def default_profile(data_dir: Path) -> Profile:
    profile = load_profile(PROFILES / "x86.yaml").profile
    return replace(profile, storage=replace(profile.storage, data_dir=str(data_dir)))


def test_yunet_finds_both_faces_on_the_bus_photo(data: Path) -> None:
    faces = create_face_detector(default_profile(Path("/tmp")).anonymizer.faces.model, 0.5)
    found = faces.detect(cv2.imread(str(data / BUS)))
    assert len(found) == 2 and all(face.score > 0.8 for face in found)
    assert any(np.allclose(face.box, FACE, atol=4) for face in found)


def snapshot_of(image: Image, profile: Profile, folder: Path) -> Image:
    """What a real camera worker sends when a snapshot of `image` (as a video file) is asked."""
    video = folder / "cut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (image.shape[1], image.shape[0]))
    for _ in range(3):
        writer.write(image)
    writer.release()
    camera = replace(profile.cameras[0], source=str(video), fps_cap=None)
    profile = replace(profile, cameras=(camera,))
    spec = WorkerSpec(profile, camera.id, ChildSetup.here("warning", "text", ()), realtime=False)
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    asked = threading.Event()
    asked.set()
    worker = CameraWorker(spec, events, threading.Event(), asked)  # type: ignore[arg-type]
    worker.source.start()
    try:
        while asked.is_set() and worker._step():
            pass
    finally:
        worker.source.stop()
        worker.detector.close()
    snapshots = []
    while not events.empty():
        event = events.get()
        if isinstance(event, Snapshot):
            snapshots.append(event)
    assert len(snapshots) == 1
    return cv2.imdecode(np.frombuffer(snapshots[0].jpeg, np.uint8), cv2.IMREAD_COLOR)


def face_changed(original: Image, sent: Image) -> float:
    """Mean absolute difference over the face, in grey levels."""
    x1, y1, x2, y2 = FACE
    return float(np.abs(original[y1:y2, x1:x2].astype(int) - sent[y1:y2, x1:x2].astype(int)).mean())


def test_a_face_whose_person_the_edge_cuts_is_hidden_by_the_face_detector(data: Path, tmp_path: Path) -> None:
    """With faces off, the person boxes alone leave this face as it was (JPEG noise only): the
    person detector does not see the man the edge cuts. With the shipped default, it is blurred."""
    cut = np.ascontiguousarray(cv2.imread(str(data / BUS))[:, :CUT_AT])
    profile = default_profile(tmp_path / "data")
    assert profile.anonymizer.faces.enabled
    without = replace(profile, anonymizer=replace(profile.anonymizer, faces=replace(profile.anonymizer.faces,
                                                                                       enabled=False)))  # fmt: skip
    assert face_changed(cut, snapshot_of(cut, without, tmp_path)) < 4
    assert face_changed(cut, snapshot_of(cut, profile, tmp_path)) > 15


class FailingFaceDetector:
    def detect(self, image: object) -> list[object]:
        raise FaceDetectorError("the face model failed")


def test_no_snapshot_leaves_when_the_face_detector_fails(data: Path, tmp_path: Path) -> None:
    """Fails closed: the frame's people were found, but its faces were not looked for."""
    profile = default_profile(tmp_path / "data")
    worker = CameraWorker.__new__(CameraWorker)
    worker.faces = FailingFaceDetector()  # type: ignore[assignment]
    worker.anonymizer, worker.camera_id = profile.anonymizer, "lobby"
    assert worker._snapshot(cv2.imread(str(data / BUS)), 0.0, [(0.0, 0.0, 100.0, 300.0)]) is None


def test_faces_off_load_no_face_model(tmp_path: Path) -> None:
    profile = default_profile(tmp_path)
    off = replace(profile.anonymizer.faces, enabled=False, model=replace(profile.anonymizer.faces.model, path=None))
    assert _face_detector(off) is None
    with pytest.raises(FaceDetectorError, match="model"):
        _face_detector(replace(off, enabled=True))
