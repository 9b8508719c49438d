"""The supervised runtime as a real process: real signals, real restarts, real scrapes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PETS_VIDEO
from tests.runtime import RunningAppliance, frames, wait_for_exit
from tests.servers import MjpegServer, free_port, wait_until

PROFILE = """
device: {id: test-appliance}
detector:
  backend: onnxruntime
  model: {path: @MODEL@}
  threads: 1
cameras:
  - {id: cam-a, source: @VIDEO@}
  - {id: cam-b, source: @VIDEO@}
areas:
  - {id: everywhere, cameras: [cam-a, cam-b], occupancy_threshold: 50}
storage:
  data_dir: @DATA_DIR@
  event_log: {sample_interval_s: 0}
metrics: {listen: "127.0.0.1:@METRICS_PORT@"}
runtime: {stall_timeout_s: 10, restart_initial_s: 0.5, status_interval_s: 1, stop_timeout_s: 10}
"""


def profile_for(data: Path, video: str | None = None) -> str:
    model = data / "models/yolox_nano_onnx/yolox_nano.onnx"
    return PROFILE.replace("@MODEL@", str(model)).replace("@VIDEO@", str(video or data / PETS_VIDEO))


@pytest.fixture
def appliance(data: Path, tmp_path: Path) -> Iterator[RunningAppliance]:
    running = RunningAppliance(tmp_path, profile_for(data))
    yield running
    running.kill()


def test_both_cameras_run_and_report(appliance: RunningAppliance) -> None:
    assert appliance.wait_for_metric(frames("cam-a"), 20), appliance.log
    assert appliance.wait_for_metric(frames("cam-b"), 20), appliance.log
    metrics = appliance.metrics()
    assert metrics['appliance_camera_up{camera="cam-a"}'] == 1
    assert metrics['appliance_area_people{area="everywhere"}'] >= 0
    info = ('appliance_build_info{model_sha256="none",profile="profile",profile_sha256="none",revision="none",'
            'version="0.1.0"}')  # fmt: skip
    assert metrics[info] == 1
    for stage in ("wait", "decode", "queue", "detect", "track", "analyse"):
        assert f'appliance_stage_latency_seconds_count{{camera="cam-a",stage="{stage}"}}' in metrics
    assert "appliance_ota_last_success_timestamp_seconds" not in metrics  # no bundle installed: no 0
    assert "ready: every camera is open" in appliance.log
    assert "cam-a: online" in appliance.log


def test_a_killed_worker_is_restarted_and_the_other_camera_keeps_going(appliance: RunningAppliance) -> None:
    assert appliance.wait_for_metric(frames("cam-b"), 10), appliance.log
    victim = appliance.worker_pids()["cam-a"]
    other = appliance.worker_pids()["cam-b"]
    os.kill(victim, signal.SIGKILL)
    before = appliance.metric(frames("cam-b"))
    assert appliance.wait_for_metric('appliance_worker_restarts_total{camera="cam-a"}', 1, timeout=20), appliance.log
    assert wait_until(lambda: appliance.worker_pids()["cam-a"] != victim, 20)
    assert appliance.wait_for_metric(frames("cam-b"), before + 10)  # cam-b never stopped
    assert appliance.worker_pids()["cam-b"] == other
    assert "camera cam-a: worker exited with code -9; restarting in 0.5 s" in appliance.log


def test_changing_one_camera_restarts_only_that_camera(data: Path, appliance: RunningAppliance) -> None:
    assert appliance.wait_for_metric(frames("cam-b"), 5), appliance.log
    pids = appliance.worker_pids()
    appliance.write_profile(profile_for(data).replace("- {id: cam-b, source:", "- {id: cam-b, fps_cap: 5, source:"))
    assert appliance.wait_for_metric("appliance_config_generation", 1, timeout=20), appliance.log
    assert wait_until(lambda: appliance.worker_pids()["cam-b"] != pids["cam-b"], 20)
    assert appliance.worker_pids()["cam-a"] == pids["cam-a"]
    assert "profile change applied: restarted ['cam-b'], reconfigured none, added none, removed none" in appliance.log


CALIBRATION = """
    distance:
      method: calibrated
      calibration:
        - {image: [102, 540], floor: [0, 0]}
        - {image: [690, 552], floor: [600, 0]}
        - {image: [610, 215], floor: [600, 1200]}
        - {image: [180, 210], floor: [0, 1200]}"""


def test_settings_are_taken_in_place_and_only_a_new_detector_restarts_the_cameras(
    data: Path, appliance: RunningAppliance
) -> None:
    """Distancing, tracker, calibration and event-log settings reach the running workers (pids
    kept, frames flowing); a new detector restarts every camera once."""
    assert appliance.wait_for_metric(frames("cam-a"), 5) and appliance.wait_for_metric(frames("cam-b"), 5)
    pids, profile = appliance.worker_pids(), profile_for(data)
    violations = 'appliance_people_in_violation{camera="cam-a"}'
    changes = [
        ("distancing: {threshold_cm: 10000}", "['cam-a', 'cam-b']"),  # everyone too close to everyone
        ("tracker: {max_lost_s: 1, min_hits: 2, low_score: 0.2}", "['cam-a', 'cam-b']"),
        (f"cameras:\n  - id: cam-a\n    source: {data / PETS_VIDEO}{CALIBRATION}", "['cam-a']"),
        ("storage: {data_dir: @DATA_DIR@, event_log: {sample_interval_s: 0, retention_days: 9}}", "none"),
    ]
    for generation, (section, reconfigured) in enumerate(changes, start=1):
        profile = _with_section(profile, section)
        appliance.write_profile(profile)
        assert appliance.wait_for_metric("appliance_config_generation", generation, timeout=30), appliance.log
        applied = f"profile change applied: restarted none, reconfigured {reconfigured}, added none, removed none"
        assert applied in appliance.log
        if generation == 1:
            assert wait_until(lambda: appliance.metric(violations) >= 2, 20), appliance.log
    assert appliance.worker_pids() == pids
    assert appliance.log.count("[cam-a] appliance.runtime.worker: new settings applied in place") == 3
    assert appliance.log.count("[cam-b] appliance.runtime.worker: new settings applied in place") == 2
    before = appliance.metric(frames("cam-b"))
    assert appliance.wait_for_metric(frames("cam-b"), before + 5), appliance.log  # frames keep flowing

    appliance.write_profile(profile.replace("threads: 1", "threads: 2"))
    assert appliance.wait_for_metric("appliance_config_generation", 5, timeout=30), appliance.log
    assert "restarted ['cam-a', 'cam-b'], reconfigured none" in appliance.log
    assert wait_until(lambda: all(appliance.worker_pids()[c] != pids[c] for c in pids), 20)
    started = re.findall(r"camera (\S+): worker started", appliance.log)
    assert sorted(started) == ["cam-a", "cam-a", "cam-b", "cam-b"]


def _with_section(profile: str, section: str) -> str:
    """`profile` with a top-level section replaced (or added); a `cameras` section replaces the
    first camera's entry."""
    key = section.split(":", 1)[0]
    if key == "cameras":
        first = re.search(r"^  - \{id: cam-a.*$", profile, flags=re.MULTILINE)
        assert first is not None
        return profile.replace(first.group(0), section.split("\n", 1)[1])
    profile = re.sub(rf"^{key}:.*\n(?:  .*\n)*", "", profile, flags=re.MULTILINE)
    return profile + section + "\n"


def test_an_invalid_profile_on_reload_keeps_the_running_one(appliance: RunningAppliance) -> None:
    assert appliance.wait_for_metric(frames("cam-a"), 5), appliance.log
    pids = appliance.worker_pids()
    appliance.profile_path.write_text(appliance.profile_path.read_text().replace("cam-b, source", "cam-b, sauce"))
    appliance.process.send_signal(signal.SIGHUP)
    assert appliance.wait_for_metric("appliance_config_reload_failures_total", 1, timeout=20), appliance.log
    assert "profile change rejected, still running the previous one" in appliance.log
    assert "unknown key 'sauce'" in appliance.log
    before = appliance.metric(frames("cam-b"))
    assert appliance.wait_for_metric(frames("cam-b"), before + 5)
    assert appliance.worker_pids() == pids
    assert appliance.metric("appliance_config_generation") == 0


def test_sigterm_stops_in_time_and_loses_nothing_from_the_event_log(appliance: RunningAppliance) -> None:
    assert appliance.wait_for_metric(frames("cam-a"), 30), appliance.log
    reported = appliance.metric(frames("cam-a"))
    workers = appliance.worker_pids().values()
    started = time.monotonic()
    assert appliance.stop(signal.SIGTERM, timeout=20) == 0
    assert time.monotonic() - started < 15
    assert all(wait_for_exit(pid) for pid in workers)
    lines = [
        json.loads(line)
        for line in (appliance.data_dir / "events" / "cam-a").glob("*.jsonl").__next__().read_text().splitlines()
    ]
    detections = [r for r in lines if r["type"] == "detections"]
    assert len(detections) >= reported  # every frame reported before the signal is in the log
    assert [r["frame"] for r in detections] == list(range(len(detections)))
    assert all(r["end"] is not None and r["end"] >= r["start"] for r in lines if r["type"] == "episode")
    assert "stopped" in appliance.log


def test_a_camera_that_keeps_failing_is_given_up_and_the_others_run(data: Path, tmp_path: Path) -> None:
    broken = profile_for(data).replace(
        f"- {{id: cam-b, source: {data / PETS_VIDEO}}}", "- {id: cam-b, source: /nonexistent.avi}"
    )
    running = RunningAppliance(
        tmp_path, broken.replace("restart_initial_s: 0.5", "restart_initial_s: 0.2, max_failures: 3")
    )
    try:
        assert wait_until(lambda: "camera cam-b: worker exited with code 3; 3 failures" in running.log, 90), running.log
        assert "video file /nonexistent.avi does not exist" in running.log
        before = running.metric(frames("cam-a"))
        assert running.wait_for_metric(frames("cam-a"), before + 5)
        assert running.metric('appliance_camera_up{camera="cam-b"}') == 0
    finally:
        running.kill()


def test_a_shared_detector_process_serves_every_camera(data: Path, tmp_path: Path) -> None:
    """How an Edge TPU or a GPU is used: one process owns the detector, frames come through shared
    memory. Here with ONNX Runtime, as no accelerator is present. A killed service is restarted;
    a new model (through the change path, as OTA and the API take it) is loaded once."""
    shared = profile_for(data).replace("status_interval_s: 1,", "status_interval_s: 1, shared_detector: 'yes',")
    running = RunningAppliance(tmp_path, shared)
    try:
        assert running.wait_for_metric(frames("cam-a"), 20), running.log
        assert running.wait_for_metric(frames("cam-b"), 20), running.log
        assert running.log.count("appliance.runtime.detectors: detector: onnxruntime") == 1
        assert "[detector] appliance.runtime.detectors: detector: onnxruntime" in running.log
        assert running.metric('appliance_stage_latency_seconds_sum{camera="cam-a",stage="queue"}') > 0
        service = int(re.findall(r"detector service started \(pid (\d+)\)", running.log)[-1])
        os.kill(service, signal.SIGKILL)
        assert wait_until(lambda: running.log.count("detector service started") == 2, 30), running.log
        before = running.metric(frames("cam-a"))
        assert running.wait_for_metric(frames("cam-a"), before + 10, timeout=90), running.log

        running.write_profile(shared.replace("yolox_nano_onnx/yolox_nano.onnx", "yolov8n_onnx/yolov8n.onnx"))
        assert running.wait_for_metric("appliance_config_generation", 1, timeout=30), running.log
        for camera in ("cam-a", "cam-b"):
            before = running.metric(frames(camera))
            assert running.wait_for_metric(frames(camera), before + 10, timeout=90), running.log
        assert running.log.count("detector service started") == 3  # the new model swapped in once
        assert running.log.count("detector: onnxruntime yolov8") == 1
    finally:
        running.kill()


def test_workers_stop_when_the_supervisor_is_killed(appliance: RunningAppliance) -> None:
    assert appliance.wait_for_metric(frames("cam-a"), 5), appliance.log
    workers = list(appliance.worker_pids().values())
    appliance.process.kill()
    assert all(wait_for_exit(pid, timeout=15) for pid in workers)


def test_workers_stop_when_a_hung_supervisor_is_killed(appliance: RunningAppliance) -> None:
    """As systemd's watchdog does: the supervisor stops reading, the workers' event pipe fills,
    then the supervisor is killed."""
    assert appliance.wait_for_metric(frames("cam-a"), 5), appliance.log
    workers = list(appliance.worker_pids().values())
    appliance.process.send_signal(signal.SIGSTOP)
    assert wait_until(lambda: any(blocked_on_pipe(pid) for pid in workers), 90)
    appliance.process.kill()
    assert all(wait_for_exit(pid, timeout=15) for pid in workers), appliance.log


def blocked_on_pipe(pid: int) -> bool:
    """Whether a thread of the process waits to write into a full pipe."""
    tasks = Path(f"/proc/{pid}/task")
    return any((task / "wchan").read_text().endswith("pipe_write") for task in tasks.iterdir())


def test_a_stream_that_dies_is_reconnected_and_counted(data: Path, tmp_path: Path) -> None:
    server = MjpegServer(data / PETS_VIDEO).start()
    one_camera = profile_for(data, video=server.url).replace(f"  - {{id: cam-b, source: {server.url}}}\n", "")
    assert "cam-b" not in one_camera.split("areas:")[0]
    running = RunningAppliance(tmp_path, one_camera.replace("[cam-a, cam-b]", "[cam-a]"))
    try:
        assert running.wait_for_metric(frames("cam-a"), 5), running.log
        server.kill()
        assert wait_until(lambda: running.metric('appliance_camera_up{camera="cam-a"}') == 0, 30), running.log
        server.start(wait=False)
        assert running.wait_for_metric('appliance_camera_reconnects_total{camera="cam-a"}', 1, timeout=60), running.log
        before = running.metric(frames("cam-a"))
        assert running.wait_for_metric(frames("cam-a"), before + 5)
    finally:
        running.kill()
        server.kill()


def test_historical_mode_processes_the_whole_file_stamped_with_video_time(data: Path, tmp_path: Path) -> None:
    running = RunningAppliance(tmp_path, profile_for(data), extra_args=("--input", str(data / PETS_VIDEO)))
    try:
        assert running.process.wait(300) == 0, running.log
    finally:
        running.kill()
    records = [
        json.loads(line)
        for path in (running.data_dir / "events").glob("cam-*/*.jsonl")
        for line in path.read_text().splitlines()
    ]
    detections = [r for r in records if r["type"] == "detections"]
    assert len(detections) == 795
    assert {r["camera"] for r in records if r["type"] != "run"} == {"cam-a"}
    assert detections[-1]["t"] == pytest.approx(794 / 10)
    assert "100%" in running.log  # the progress bar finished


def test_systemd_notifications(data: Path, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(30)
    running = RunningAppliance(tmp_path, profile_for(data), env={"NOTIFY_SOCKET": address})
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not {"READY=1", "WATCHDOG=1"} <= set(messages):
            messages += listener.recv(4096).decode().splitlines()
        while time.monotonic() < deadline and not any(m.startswith("STATUS=cam-a: online") for m in messages):
            messages += listener.recv(4096).decode().splitlines()
    finally:
        running.kill()
        listener.close()
    assert "READY=1" in messages and "WATCHDOG=1" in messages
    assert any(m.startswith("STATUS=cam-a: online") and "fps" in m and "cam-b:" in m for m in messages)


@pytest.mark.skipif(not Path("/usr/bin/prometheus").exists(), reason="Debian's prometheus is not installed")
def test_a_real_prometheus_scrapes_the_metrics(appliance: RunningAppliance, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n  - job_name: appliance\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{appliance.metrics_port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    query = urllib.parse.urlencode({"query": 'appliance_frames_processed_total{camera="cam-a"}'})

    def scraped_value() -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{query}", timeout=2) as response:
                result = json.load(response)["data"]["result"]
        except OSError:
            return 0.0
        return float(result[0]["value"][1]) if result else 0.0

    try:
        assert wait_until(lambda: scraped_value() > 0, 60, interval=0.5)
    finally:
        prometheus.terminate()
        prometheus.wait(20)
