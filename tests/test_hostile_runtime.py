"""Runtime faults, with real processes, real signals, a real full disk: the runtime keeps running
what works, refuses what would break it, says so once and clearly, and its exit status tells."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.runtime.preflight import DataDirBusyError, DataDirLock
from tests.conftest import PETS_VIDEO
from tests.hostile import bounded_cli
from tests.runtime import RunningAppliance, frames, wait_for_exit
from tests.servers import free_port, wait_until
from tests.test_runtime import profile_for

MODEL = "models/yolox_nano_onnx/yolox_nano.onnx"


@contextlib.contextmanager
def occupied_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def online(running: RunningAppliance, *cameras: str) -> bool:
    return all(running.wait_for_metric(frames(camera), 3, timeout=90) for camera in cameras)


def rejections(running: RunningAppliance) -> int:
    return running.log.count("profile change rejected")


def test_one_sighup_or_edit_reloads_once_even_at_debug_with_the_log_beside_the_profile(
    data: Path, tmp_path: Path
) -> None:
    """Reading the profile must not look like a change (it once looped 48 times in 10 s),
    watchdog's own debug lines about the log file beside the profile must not feed themselves,
    and an edit written in place is read once it is whole."""
    profile = profile_for(data) + "mqtt: {enabled: false, password: e}\n"  # a one-letter secret
    running = RunningAppliance(tmp_path, profile, log_level="debug")
    try:
        assert online(running, "cam-a", "cam-b"), running.log
        running.process.send_signal(signal.SIGHUP)
        time.sleep(2)
        running.write_profile(profile)  # an edit that changes nothing
        time.sleep(2)
        edited = running.profile_path.read_text().replace(
            "- {id: cam-b, source: ", "- {id: cam-b, fps_cap: 5, source: "
        )
        with running.profile_path.open("w") as stream:  # in place, as some editors do: truncated first
            stream.write(edited[:40])
            stream.flush()
            time.sleep(0.2)
            stream.write(edited[40:])
        assert wait_until(lambda: "profile change applied" in running.log, 20), running.log
        size = running.log_path.stat().st_size
        time.sleep(5)
        growth = running.log_path.stat().st_size - size
        assert running.metric("appliance_config_generation") == 1
    finally:
        assert running.stop() == 0
    log = running.log
    assert log.count("profile change applied") == 1 and rejections(running) == 0
    assert len(re.findall(r"DEBUG appliance\.config\.loader: loaded profile", log)) <= 4
    assert " watchdog" not in log
    assert growth < 100_000, f"{growth} bytes of log in 5 s"
    assert "********" not in log  # the one-letter password masks no 'e' anywhere


def test_changes_that_would_break_a_working_runtime_are_refused_while_it_keeps_running(
    data: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    profile = profile_for(data)
    model = str(data / MODEL)
    breaking = {
        "missing model": profile.replace(model, str(tmp_path / "absent.onnx")),
        "model is a folder": profile.replace(model, str(tmp_path / "folder.onnx")),
        "wrong digest": profile.replace(f"path: {model}}}", f"path: {model}, sha256: {'f' * 64}}}"),
        "FIFO secret": profile + f"mqtt: {{enabled: false, password: '${{file:{fifo}}}'}}\n",
        "data_dir under a file": profile.replace("data_dir: @DATA_DIR@", f"data_dir: {blocker}/data"),
    }
    (tmp_path / "folder.onnx").mkdir()
    running = RunningAppliance(tmp_path, profile)
    try:
        assert online(running, "cam-a", "cam-b"), running.log
        workers = running.worker_pids()
        with occupied_port() as port:
            breaking["metrics port in use"] = profile.replace("@METRICS_PORT@", str(port))
            for count, (name, text) in enumerate(breaking.items(), start=1):
                before = running.metric(frames("cam-a"))
                running.write_profile(text)
                assert wait_until(lambda n=count: rejections(running) >= n, 10), f"{name}: {running.log}"
                assert running.wait_for_metric(frames("cam-a"), before + 5, 10), f"{name}: frames stopped"
        assert running.worker_pids() == workers  # no camera was stopped or restarted
        assert running.metric("appliance_config_generation") == 0
        assert running.metric("appliance_config_reload_failures_total") == len(breaking)
        log = running.log
        for expected in ("absent.onnx does not exist", "folder.onnx is a folder", "has sha256", "is a FIFO",
                         "cannot create", "Address already in use"):  # fmt: skip
            assert expected in log
    finally:
        assert running.stop() == 0
    assert "Traceback" not in running.log


def test_a_changed_data_dir_moves_the_event_log_and_the_lock(data: Path, tmp_path: Path) -> None:
    running = RunningAppliance(tmp_path, profile_for(data))
    moved = tmp_path / "moved"
    try:
        assert online(running, "cam-a"), running.log
        running.write_profile(profile_for(data).replace("data_dir: @DATA_DIR@", f"data_dir: {moved}"))
        assert wait_until(lambda: any((moved / "events" / "cam-a").glob("*.jsonl")), 30), running.log
        with DataDirLock(running.data_dir):  # the old folder is free
            pass
        with pytest.raises(DataDirBusyError, match="in use by another appliance runtime"), DataDirLock(moved):
            pass
    finally:
        assert running.stop() == 0


def test_a_second_runtime_on_the_same_data_dir_is_refused(data: Path, tmp_path: Path) -> None:
    first = RunningAppliance(tmp_path, profile_for(data))
    try:
        assert online(first, "cam-a"), first.log
        second = tmp_path / "second"
        second.mkdir()
        (second / "profile.yaml").write_text(
            first.profile_path.read_text().replace(str(first.metrics_port), str(free_port()))
        )
        outcome = bounded_cli("run", "--profile", "profile.yaml", cwd=second)
        assert outcome.returncode == 2, outcome.output
        assert f"is in use by another appliance runtime (pid {first.process.pid})" in outcome.stderr
        assert "storage.data_dir" in outcome.stderr and "Traceback" not in outcome.stderr
        assert first.process.poll() is None
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize("fault", ["metrics port in use", "data_dir under a file", "model is a folder",
                                   "input is a folder", "input is a FIFO", "data_dir locked"])  # fmt: skip
def test_run_refuses_to_start_where_it_could_not_work(fault: str, data: Path, tmp_path: Path) -> None:
    profile = (
        profile_for(data).replace("@DATA_DIR@", str(tmp_path / "data")).replace("@METRICS_PORT@", str(free_port()))
    )
    args = ["run", "--profile", "profile.yaml"]
    (tmp_path / "file").write_text("")
    with occupied_port() as port, contextlib.ExitStack() as stack:
        if fault == "metrics port in use":
            profile = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", profile)
            expected = "metrics.listen: cannot listen on"
        elif fault == "data_dir under a file":
            profile = profile.replace(str(tmp_path / "data"), str(tmp_path / "file" / "data"))
            expected = "storage.data_dir: cannot create"
        elif fault == "model is a folder":
            (tmp_path / "m.onnx").mkdir()
            profile = profile.replace(str(data / MODEL), str(tmp_path / "m.onnx"))
            expected = "m.onnx is a folder, not a regular file"
        elif fault == "data_dir locked":
            (tmp_path / "data").mkdir()
            stack.enter_context(DataDirLock(tmp_path / "data"))
            expected = f"in use by another appliance runtime (pid {os.getpid()})"
        else:
            target = tmp_path / "input"
            target.mkdir() if fault == "input is a folder" else os.mkfifo(target)
            args += ["--input", str(target)]
            expected = "is a folder" if fault == "input is a folder" else "is a FIFO"
        (tmp_path / "profile.yaml").write_text(profile)
        outcome = bounded_cli(*args, cwd=tmp_path)
    assert outcome.returncode == 2, outcome.output
    assert expected in outcome.stderr and "Traceback" not in outcome.stderr, outcome.stderr


@pytest.mark.parametrize("fault", ["corrupt video", "failing model"])
def test_historical_mode_exits_1_when_it_gives_up(fault: str, data: Path, tmp_path: Path) -> None:
    video = data / "sequences/PETS09-S2L1/vtest.avi"
    profile = (
        profile_for(data).replace("@DATA_DIR@", str(tmp_path / "data")).replace("@METRICS_PORT@", str(free_port()))
    )
    profile = profile.replace("restart_initial_s: 0.5", "restart_initial_s: 0.1, max_failures: 2")
    if fault == "corrupt video":
        video = tmp_path / "corrupt.avi"
        video.write_bytes(os.urandom(200_000))
    else:
        (tmp_path / "broken.onnx").write_bytes(os.urandom(10_000))
        profile = profile.replace(str(data / MODEL), str(tmp_path / "broken.onnx"))
    (tmp_path / "profile.yaml").write_text(profile)
    outcome = bounded_cli("--log-level", "info", "run", "--profile", "profile.yaml", "--input", str(video),
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert outcome.returncode == 1, outcome.output
    assert "giving up on it" in outcome.stderr
    assert "gave up on cam-a: the input was not processed to its end" in outcome.stderr


def test_a_folder_as_a_camera_source_is_named_as_a_folder(data: Path, tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    profile = profile_for(data).replace(str(data / "sequences/PETS09-S2L1/vtest.avi"), str(tmp_path / "videos"), 1)
    running = RunningAppliance(tmp_path, profile)
    try:
        assert wait_until(lambda: "is a folder, not a regular file" in running.log, 30), running.log
    finally:
        assert running.stop() == 0


def test_a_worker_spawned_just_before_the_supervisor_is_killed_stops(data: Path, tmp_path: Path) -> None:
    """The race: the worker is still importing when its parent dies, so it must know the
    supervisor's pid from the start, not read its parent's pid later."""
    running = RunningAppliance(tmp_path, profile_for(data))
    try:
        assert wait_until(lambda: len(running.worker_pids()) == 2, 30, interval=0.01), running.log
        running.process.kill()
        workers = running.worker_pids()
        assert "worker stopped" not in running.log  # they were still starting
    finally:
        running.kill()
    for camera, pid in workers.items():
        assert wait_for_exit(pid, 20), f"{camera} worker {pid} still running"


def test_many_cameras_removed_at_once_stop_together(data: Path, tmp_path: Path) -> None:
    video = data / "sequences/PETS09-S2L1/vtest.avi"
    cameras = "".join(f"  - {{id: cam-{i}, source: {video}, fps_cap: 2}}\n" for i in range(6))
    profile = (
        profile_for(data)
        .replace(f"  - {{id: cam-a, source: {video}}}\n  - {{id: cam-b, source: {video}}}\n", cameras)
        .replace("cameras: [cam-a, cam-b]", "cameras: [cam-0]")
    )
    running = RunningAppliance(tmp_path, profile)
    try:
        assert online(running, *(f"cam-{i}" for i in range(6))), running.log
        started = time.monotonic()
        running.write_profile(profile.replace(cameras, cameras.splitlines(keepends=True)[0]))
        assert wait_until(lambda: "profile change applied" in running.log, 30), running.log
        seconds = time.monotonic() - started
    finally:
        assert running.stop() == 0
    assert "removed ['cam-1', 'cam-2', 'cam-3', 'cam-4', 'cam-5']" in running.log
    assert seconds < 10, f"removing 5 cameras took {seconds:.1f} s"
    assert "did not stop in time" not in running.log
    assert all(f"[cam-{i}] appliance.runtime.worker: worker stopped" in running.log for i in range(1, 6))


def _namespaces_work() -> bool:
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(shutil.which("unshare") is None or not _namespaces_work(), reason="needs user namespaces")
def test_a_full_disk_costs_counted_events_not_whole_lines_or_the_runtime(data: Path, tmp_path: Path) -> None:
    """The data_dir is a 2 MiB tmpfs of the appliance's own (a mount namespace); the test fills
    it through /proc/PID/root, then frees it."""
    (tmp_path / "data").mkdir()
    wrapper = ("unshare", "-Urm", "sh", "-c", 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"',
               str(tmp_path / "data"))  # fmt: skip
    no_broker = f"mqtt: {{enabled: true, host: 127.0.0.1, port: {free_port()}}}\n"  # events wait in the spool
    running = RunningAppliance(tmp_path, profile_for(data) + no_broker, wrapper=wrapper)
    inside = Path(f"/proc/{running.process.pid}/root") / str(tmp_path / "data").lstrip("/")
    filler = inside / "filler"
    lost = 'appliance_output_events_lost_total{output="event_log"}'
    try:
        assert online(running, "cam-a", "cam-b"), running.log
        with filler.open("wb") as stream, contextlib.suppress(OSError):
            while True:
                stream.write(b"\0" * 65536)
                stream.flush()
        assert running.wait_for_metric(lost, 20, timeout=30), running.log
        assert running.metric('appliance_output_up{output="event_log"}') == 0
        mqtt_lost = 'appliance_output_events_lost_total{output="mqtt"}'
        assert running.wait_for_metric(mqtt_lost, 1, timeout=90), running.log
        before = running.metric(frames("cam-a"))
        assert running.wait_for_metric(frames("cam-a"), before + 10, 20)  # the cameras go on
        filler.unlink()
        assert wait_until(lambda: "event log: writing again" in running.log, 20), running.log
        assert running.metric('appliance_output_up{output="event_log"}') == 1
        lost_then = running.metric(lost)
        time.sleep(2)
        assert running.metric(lost) == lost_then
        files = list(inside.glob("events/*/*.jsonl"))
        lines = [line for file in files for line in file.read_text().splitlines()]
        assert files and lines and all(line.startswith("{") and line.endswith("}") for line in lines)
    finally:
        code = running.stop()
    assert code == 0, running.log
    assert running.log.count("event log: cannot write in") == 1
    assert running.log.count("mqtt: cannot keep events in the spool") == 1
    assert "No space left on device" in running.log and "Traceback" not in running.log


@pytest.mark.skipif(shutil.which("unshare") is None or not _namespaces_work(), reason="needs user namespaces")
def test_starting_on_a_full_data_folder_is_bad_input_with_its_place(data: Path, tmp_path: Path) -> None:
    """A 1 MiB tmpfs, filled before the runtime starts: exit status 2 and the line of
    storage.data_dir, no traceback."""
    folder = tmp_path / "data"
    folder.mkdir()
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        f"device: {{id: t}}\ncameras: [{{id: a, source: {data / PETS_VIDEO}}}]\n"
        f"storage: {{data_dir: {folder}}}\nmetrics: {{enabled: false}}\napi: {{enabled: false}}\n"
    )
    fill = 'mount -t tmpfs -o size=1m tmpfs "$0" && (dd if=/dev/zero of="$0/fill" bs=64k 2>/dev/null; exec "$@")'
    command = ["unshare", "-Urm", "sh", "-c", fill, str(folder), sys.executable, "-m", "appliance", "run",
               str(profile)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert f"{profile}:3:" in done.stderr and "storage.data_dir" in done.stderr and "KiB free" in done.stderr
    assert "Traceback" not in done.stderr
