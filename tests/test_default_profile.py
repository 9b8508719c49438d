"""The shipped default profile as a new user runs it: its own model, no download, no network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PETS_VIDEO, PROFILES, REPO

NO_NETWORK = ("unshare", "-rn")  # a network namespace of its own: no interface up, no route out


def _isolation_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run([*NO_NETWORK, "true"], capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(not _isolation_works(), reason="needs user and network namespaces (unshare -rn)")


def test_there_is_no_route_out_in_the_isolated_namespace() -> None:
    probe = "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), 2)\nexcept OSError as e:\n    print(e)"
    result = subprocess.run([*NO_NETWORK, sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "Network is unreachable" in result.stdout


def test_the_default_profile_runs_a_recording_with_no_network(data: Path, tmp_path: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text(
        f"extends: {PROFILES / 'x86.yaml'}\n"
        f"cameras: [{{id: lobby, source: {data / PETS_VIDEO}}}]\n"
        "areas: [{id: hall, cameras: [lobby], occupancy_threshold: 20}]\n"
        f"storage: {{data_dir: {tmp_path / 'data'}}}\n"
        "metrics: {enabled: false}\nmqtt: {enabled: false}\napi: {enabled: false}\nota: {enabled: false}\n"
    )
    result = subprocess.run(
        [*NO_NETWORK, sys.executable, "-m", "appliance", "--log-level", "info", "run", "--profile", str(profile),
         "--input", str(data / PETS_VIDEO)],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "detector: openvino ssd 640x480" in result.stderr
    assert "camera lobby: 795 frames in" in result.stderr
    (events,) = (tmp_path / "data" / "events" / "lobby").glob("*.jsonl")
    assert events.stat().st_size > 0
    summary = result.stderr.split(" ended\n")[-1]  # the run's summary, at the end
    assert re.search(
        r"camera lobby: 795 frames in .* people: peak [1-9]\d*, mean [\d.]+; in violation: peak \d+", summary
    )
    assert "area hall: " in summary and f"events: {tmp_path / 'data' / 'events'}" in summary
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert records[0]["type"] == records[-1]["type"] == "run" and records[0]["run"] == records[-1]["run"]
    assert records[-1]["summary"]["cameras"][0]["frames"] == 795
