"""The runtime core as real processes: a slow output never holds up the supervisor, a profile
change reconfigures outputs, no secret reaches any process's log, a hung detector service is
restarted, and the keys that shape frames and logs do what they say."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from appliance.config.yamlio import previous_version
from tests.conftest import PETS_VIDEO
from tests.programs.change_driver import outcomes_path
from tests.runtime import RunningAppliance, frames, wait_for_exit
from tests.servers import MjpegServer, free_port, listening, wait_until
from tests.test_runtime import profile_for

WATCH_S = 12.0


def watchdog_times(listener: socket.socket, seconds: float) -> list[float]:
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            message = listener.recv(4096).decode()
        except TimeoutError:
            continue
        if "WATCHDOG=1" in message.splitlines():
            times.append(time.monotonic())
    return times


def test_a_slow_output_never_holds_up_the_supervisor(data: Path, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(1)
    running = RunningAppliance(
        tmp_path, profile_for(data), program=("tests.programs.slow_output",), env={"NOTIFY_SOCKET": address}
    )
    try:
        assert running.wait_for_metric(frames("cam-a"), 10, timeout=90), running.log
        assert running.wait_for_metric(frames("cam-b"), 10, timeout=30), running.log
        before = running.metric(frames("cam-a"))
        beats = watchdog_times(listener, WATCH_S)
        # about every second, not once per slow event (5 s); slack for a busy machine
        assert len(beats) >= WATCH_S / 3, beats
        assert max(b - a for a, b in itertools.pairwise(beats)) < 4.5
        assert running.metric(frames("cam-a")) > before  # frames went on, and the metrics kept up
        dropped = 'appliance_output_events_dropped_total{output="%s"}'
        assert running.metric(dropped % "slow") > 0
        assert running.metric(dropped % "event_log") == 0 and running.metric(dropped % "metrics") == 0
        started = time.monotonic()
        assert running.stop(signal.SIGTERM, timeout=40) == 0, running.log
        assert time.monotonic() - started < 25  # stop_timeout_s bounds the slow output too
        assert "output slow did not finish" in running.log
    finally:
        running.kill()
        listener.close()


def test_a_changed_metrics_listen_address_takes_effect_without_restarting_cameras(data: Path, tmp_path: Path) -> None:
    running = RunningAppliance(tmp_path, profile_for(data))
    try:
        assert running.wait_for_metric(frames("cam-a"), 5, timeout=90), running.log
        pids, old_port, new_port = running.worker_pids(), running.metrics_port, free_port()
        running.write_profile(profile_for(data).replace("@METRICS_PORT@", str(new_port)))
        running.metrics_port = new_port
        assert running.wait_for_metric("appliance_config_generation", 1, timeout=30), running.log
        assert wait_until(lambda: not listening(old_port), 10)
        assert "profile change applied: restarted none, reconfigured none, added none, removed none" in running.log
        assert running.worker_pids() == pids
    finally:
        running.kill()


def test_no_secret_reaches_any_log_metric_or_event_file(data: Path, tmp_path: Path) -> None:
    password, token, env_secret = "Pa55-w0rd-Camera", "T0ken-7f3a9", "Env-S3cret-Value"
    server = MjpegServer(data / PETS_VIDEO).start()
    url = server.url.replace("http://", f"http://viewer:{password}@") + f"?token={token}&user=${{env:CAM_USER}}"
    profile = profile_for(data).replace(f"source: {data / PETS_VIDEO}}}", f'source: "{url}"}}', 1)
    assert password in profile
    running = RunningAppliance(tmp_path, profile, log_level="debug", env={"CAM_USER": env_secret})
    try:
        assert running.wait_for_metric(frames("cam-a"), 10, timeout=90), running.log
        server.kill()  # the source's errors and reconnects, logged with the URL
        assert wait_until(lambda: running.metric('appliance_camera_up{camera="cam-a"}') == 0, 30), running.log
        metrics_text = json.dumps(running.metrics())
        running.process.send_signal(signal.SIGHUP)  # a reload logs the profile's files again
        assert running.wait_for_metric("appliance_config_generation", 0, timeout=5)
        assert running.stop(signal.SIGTERM) == 0
    finally:
        running.kill()
        server.kill()
    log = running.log
    assert "[cam-a]" in log and "[cam-b]" in log and " DEBUG " in log  # every process logged, at debug
    written = [log, metrics_text] + [
        p.read_bytes().decode(errors="replace") for p in running.data_dir.rglob("*") if p.is_file()
    ]  # the history store too
    for secret in (password, token, env_secret):
        assert not any(secret in text for text in written), secret


def test_a_hung_detector_service_is_restarted(data: Path, tmp_path: Path) -> None:
    shared = profile_for(data).replace("status_interval_s: 1,", "status_interval_s: 1, shared_detector: 'yes',")
    running = RunningAppliance(tmp_path, shared)
    try:
        assert running.wait_for_metric(frames("cam-a"), 10, timeout=90), running.log
        service = int(re.findall(r"detector service started \(pid (\d+)\)", running.log)[-1])
        os.kill(service, signal.SIGSTOP)  # alive, but answers nothing
        assert wait_until(lambda: "detector service hangs: no heartbeat" in running.log, 40), running.log
        assert wait_for_exit(service, 15)
        assert wait_until(lambda: running.log.count("detector service started") == 2, 20), running.log
        before = running.metric(frames("cam-a"))
        assert running.wait_for_metric(frames("cam-a"), before + 10, timeout=90), running.log
    finally:
        running.kill()


def test_fps_cap_resolution_and_json_logs_in_historical_mode(data: Path, tmp_path: Path) -> None:
    profile = profile_for(data).replace(
        f"- {{id: cam-a, source: {data / PETS_VIDEO}}}",
        f"- {{id: cam-a, source: {data / PETS_VIDEO}, fps_cap: 2.5, resolution: [384, 288]}}",
    )
    running = RunningAppliance(
        tmp_path, profile + "logging: {format: json}\n", extra_args=("--input", str(data / PETS_VIDEO))
    )
    try:
        assert running.process.wait(300) == 0, running.log
    finally:
        running.kill()
    records = [json.loads(line) for line in running.log.splitlines() if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "process", "message"} <= set(r) for r in records)
    assert {"main", "cam-a"} <= {r["process"] for r in records}
    (events,) = (running.data_dir / "events" / "cam-a").glob("*.jsonl")
    detections = [r for r in map(json.loads, events.read_text().splitlines()) if r["type"] == "detections"]
    assert len(detections) == pytest.approx(795 / 10 * 2.5, abs=2)  # a 10 fps file at most 2.5 fps
    assert {r["frame"] % 4 for r in detections} == {0}  # every fourth frame: the others skipped
    boxes = [p["box"] for r in detections for p in r["people"]]
    assert boxes and max(b[2] for b in boxes) <= 384 and max(b[3] for b in boxes) <= 288


def test_changes_through_the_path_report_their_outcome_in_a_running_runtime(data: Path, tmp_path: Path) -> None:
    """As the API and MQTT will: changes from another thread of a running runtime."""
    running = RunningAppliance(tmp_path, profile_for(data), program=("tests.programs.change_driver",))
    text = running.profile_path.read_text()
    try:
        assert running.process.wait(180) == 0, running.log
    finally:
        running.kill()
    lines = outcomes_path(running.profile_path).read_text().splitlines()
    outcomes = {outcome["change"]: outcome for outcome in map(json.loads, lines)}
    assert {"edit", "invalid", "same"} <= outcomes.keys(), running.log
    edit, invalid, same = outcomes["edit"], outcomes["invalid"], outcomes["same"]
    assert edit["applied"] and edit["generation"] == 1 and edit["restarted"] == ["cam-b"] and not edit["added"]
    assert set(edit["outputs"]) == {"metrics", "event_log", "mqtt", "api", "notifications", "s3", "ota"}
    assert "fps_cap: 5" in running.profile_path.read_text()
    assert previous_version(running.profile_path).read_text() == text
    assert not invalid["applied"] and invalid["generation"] == 1
    assert any("device.id: 'Not Valid' does not match" in error for error in invalid["errors"])
    assert same["unchanged"] and same["generation"] == 1
    assert "profile change applied: restarted ['cam-b'], reconfigured none, added none, removed none" in running.log
    loads = re.findall(r"profile loaded for a change from (\w+)", running.log)
    assert loads == ["test", "test"], loads  # the edit and the invalid one; not the reloads of the edit's own write
