"""The shared detector service as its workers meet it: one that dies mid-request or floods it
with frames does not stop the service from answering the others, each with what the model
alone finds. The whole scene runs in a process of its own (python -m this module), as the
supervisor does: the semaphores and shared memory it makes are tracked by that process's resource
tracker, which ends with it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import cast

import cv2

from appliance.config import load_profile
from appliance.runtime.detectors.remote import RemoteDetector
from appliance.runtime.detectors.service import DetectorService
from appliance.runtime.processes import ChildSetup
from appliance.runtime.types import Image
from tests.conftest import PETS_VIDEO, PROFILES, REPO

FLOOD = 40


def scene(folder: Path, video: str) -> None:
    """The service, a steady worker, one that floods it and one that dies before its answer;
    what went wrong is written to `folder/report`."""
    context = multiprocessing.get_context("spawn")
    profile = load_profile(PROFILES / "x86.yaml").profile
    profile = replace(profile, storage=replace(profile.storage, data_dir=str(folder)))
    service = DetectorService(context, profile, ChildSetup.here("warning", "text", ()), folder / "run")
    service.start()
    try:
        image = cast(Image, cv2.VideoCapture(video).read()[1])
        problems = clients(service.address, image)
        if service.problem(stall_timeout_s=30, start_timeout_s=120) is not None:
            problems.append("the service needs a restart")
    finally:
        service.stop(10)
    (folder / "report").write_text("; ".join(problems) or "ok")


def clients(address: str, image: Image) -> list[str]:
    steady, flooder, victim = (RemoteDetector(address) for _ in range(3))
    expected, problems = steady.detect(image), []
    if not expected or flooder.detect(image) != expected or victim.detect(image) != expected:
        problems.append("the clients do not get the same detections")
    assert victim.block is not None and flooder.block is not None
    victim.connection.send((victim.block.name, image.shape))
    victim.close()  # gone before its answer
    for _ in range(FLOOD):  # never waits for an answer
        flooder.connection.send((flooder.block.name, image.shape))
    if not all(steady.detect(image) == expected for _ in range(10)):
        problems.append("the steady client got other detections while another flooded the service")
    if not all(flooder.connection.recv()[0] == expected for _ in range(FLOOD)):
        problems.append("the flooding client's frames were not each answered")
    steady.close()
    flooder.close()
    return problems


def test_a_worker_that_dies_or_floods_does_not_stop_the_others(data: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.test_detector_service", str(tmp_path), str(data / PETS_VIDEO)]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "report").read_text() == "ok"


if __name__ == "__main__":
    scene(Path(sys.argv[1]), sys.argv[2])
