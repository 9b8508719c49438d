"""Many cameras on one appliance: analysed frames per second, CPU, memory and latency.

    .venv/bin/python bench/cameras.py [--cameras 1 2 4 8] [--seconds 30] [--fps-cap 5] [--detector both]
                                      [--motion both] [--detector-section '{model: ..., class_id: 0}']

Every camera is a live RTSP stream of 1280x720 H.264 at 25 fps: TUD-Stadtmitte scaled up and
encoded once (cached in ~/.cache/appliance-bench), then served as it is by GStreamer's RTSP
server on loopback, each camera its own session. The appliance runs the default profile
(x86.yaml) with N such cameras and `fps_cap` each, for a warm-up of 15 s and then `--seconds`
counted; each worker with its own detector, or (`--detector shared`) one detector service for
all of them with OpenVINO's throughput hint; without or with motion gating (`--motion`); with the
default detector or one changed by `--detector-section` (a YAML mapping merged into the
profile's `detector`). Reported per N: analysed fps per camera (min and median) and in total;
CPU of the appliance's processes (percent of one core); RSS of the supervisor and of each other
process (median: the workers) and the PSS of all of them together (shared pages counted once:
what the cameras really cost); capture -> result latency at the outputs (median, p95); frames a
second dropped (the worker fell behind), skipped by the cap and not detected for want of motion.
The detector alone on all cores, on the same frames, gives the ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
from ruamel.yaml import YAML

from appliance.app import build_runtime
from appliance.config import load_profile
from appliance.runtime.detectors import create_detector
from appliance.runtime.events import CameraStatus, Event, FrameResult
from appliance.runtime.outputs.base import Output
from appliance.runtime.tracking import detector_config_for
from appliance.runtime.types import Image
from tests.servers import RtspServer

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SOURCE_VIDEO = DATA / "sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4"
CACHE = Path.home() / ".cache" / "appliance-bench"
WARM_UP_S = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def feed() -> Path:
    """The 720p H.264 25 fps feed, made once: scaled and encoded, then looped without re-encoding."""
    long = CACHE / "tud-720p-h264-long.mp4"
    if long.exists():
        return long
    CACHE.mkdir(parents=True, exist_ok=True)
    short = CACHE / "tud-720p-h264.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(SOURCE_VIDEO), "-vf", "scale=1280:720", "-c:v", "libx264",
                    "-preset", "veryfast", "-r", "25", "-g", "50", str(short)], check=True)  # fmt: skip
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "29", "-i", str(short), "-c", "copy", str(long)],
                   check=True)  # fmt: skip
    return long


class Probe(Output):
    """Counts what reaches the outputs: frames and their age, and each camera's source counters."""

    name = "bench-probe"

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}
        self.latencies: list[float] = []
        self.sources: dict[str, CameraStatus] = {}
        self.counting = False

    def handle(self, event: Event) -> None:
        if isinstance(event, CameraStatus):
            self.sources[event.camera_id] = event
        elif isinstance(event, FrameResult) and self.counting:
            self.frames[event.camera_id] = self.frames.get(event.camera_id, 0) + 1
            self.latencies.append(time.time() - event.timestamp)

    def counters(self) -> dict[str, tuple[int, int, int]]:
        return {c: (status.dropped, status.skipped, status.motion_skipped) for c, status in self.sources.items()}


def run_appliance(profile: Path, seconds: float, result: Path) -> None:
    """In the child process: the appliance with the probe, stopped after warm-up and `seconds`."""
    probe = Probe()
    runtime = build_runtime(profile, log_level="warning", extra_outputs=[probe])

    def measure() -> None:
        time.sleep(WARM_UP_S)
        before, probe.counting, started = probe.counters(), True, time.monotonic()
        os.kill(os.getppid(), signal.SIGUSR1)  # the parent starts counting CPU
        time.sleep(seconds)
        probe.counting, elapsed, after = False, time.monotonic() - started, probe.counters()
        result.write_text(json.dumps({
            "seconds": elapsed, "frames": probe.frames, "latencies": probe.latencies,
            **{name: sum(after[c][i] - before.get(c, (0, 0, 0))[i] for c in after)
               for i, name in enumerate(("dropped", "skipped", "motion_skipped"))},
        }))  # fmt: skip
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=measure, daemon=True).start()
    runtime.run()


def tree(root: int) -> list[int]:
    """`root` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(parents.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return times


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory_mb(pid: int, field: str) -> float:
    """A field of the process's memory (kB in /proc) in MB: VmRSS from status, Pss from smaps_rollup."""
    source = "status" if field == "VmRSS" else "smaps_rollup"
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Setup:
    cameras: int
    shared: bool
    motion: bool
    fps_cap: float
    detector: str  # a YAML mapping merged into the profile's detector, or ""


def profile_text(folder: Path, url: str, setup: Setup) -> str:
    entries = "".join(f'  - {{id: cam-{i:02d}, source: "{url}", fps_cap: {setup.fps_cap}}}\n'
                      for i in range(setup.cameras))  # fmt: skip
    ids = ", ".join(f"cam-{i:02d}" for i in range(setup.cameras))
    detector = dict(YAML(typ="safe").load(setup.detector) or {}) if setup.detector else {}
    if setup.shared:
        detector["performance_hint"] = "throughput"
    return (f"extends: {REPO / 'profiles' / 'x86.yaml'}\ndevice: {{id: bench}}\ncameras:\n{entries}"
            f"areas: [{{id: hall, cameras: [{ids}]}}]\nstorage: {{data_dir: {folder / 'data'}}}\n"
            "metrics: {enabled: false}\napi: {enabled: false}\nmqtt: {enabled: false}\n"
            f"ota: {{enabled: false}}\nruntime: {{shared_detector: '{'yes' if setup.shared else 'no'}'}}\n"
            f"motion: {{enabled: {str(setup.motion).lower()}}}\ndetector: {json.dumps(detector)}\n")  # fmt: skip


def measure(setup: Setup, seconds: float, url: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        profile, result = folder / "profile.yaml", folder / "result.json"
        profile.write_text(profile_text(folder, url, setup))
        counting = threading.Event()
        signal.signal(signal.SIGUSR1, lambda *_: counting.set())
        with (folder / "appliance.log").open("w") as log:
            child = subprocess.Popen([sys.executable, __file__, "--one", str(profile), str(seconds), str(result)],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=REPO)  # fmt: skip
            if not counting.wait(WARM_UP_S + 120):
                child.kill()
                raise SystemExit(f"the appliance did not start:\n{(folder / 'appliance.log').read_text()[-3000:]}")
            pids = tree(child.pid)
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            time.sleep(seconds * 0.9)
            cpu_after, elapsed = cpu_seconds(pids), time.monotonic() - started
            workers = [memory_mb(pid, "VmRSS") for pid in pids[1:]
                       if pid in cpu_after and "resource_tracker" not in cmdline(pid)]  # fmt: skip
            supervisor = memory_mb(child.pid, "VmRSS")
            pss = sum(memory_mb(pid, "Pss") for pid in pids if pid in cpu_after)
            child.wait(120)
        data = json.loads(result.read_text())
    fps = sorted(count / data["seconds"] for count in data["frames"].values()) or [0.0]
    fps += [0.0] * (setup.cameras - len(fps))
    latencies = sorted(data["latencies"]) or [0.0]
    busy = sum(cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after)
    return {
        "cameras": setup.cameras, "shared": setup.shared, "motion": setup.motion,
        "min": min(fps), "median": statistics.median(fps), "total": sum(fps),
        "cpu": 100 * busy / elapsed, "supervisor_mb": supervisor,
        "worker_mb": statistics.median(workers) if workers else 0.0, "pss_mb": pss,
        "latency_median": statistics.median(latencies) * 1000,
        "latency_p95": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        **{key: data[key] / data["seconds"] for key in ("dropped", "skipped", "motion_skipped")},
    }  # fmt: skip


def detector_ceiling(video: Path, section: str, frames: int = 100) -> float:
    """Frames a second the benchmarked detector alone processes on all cores, on the feed's frames."""
    with tempfile.TemporaryDirectory() as temporary:
        profile = Path(temporary) / "profile.yaml"
        profile.write_text(f"extends: {REPO / 'profiles' / 'x86.yaml'}\ndetector: {section or '{}'}\n")
        detector = create_detector(detector_config_for(load_profile(profile).profile))
    capture = cv2.VideoCapture(str(video))
    images = [cast(Image, capture.read()[1]) for _ in range(frames)]
    detector.detect(images[0])
    started = time.perf_counter()
    for image in images:
        detector.detect(image)
    elapsed = time.perf_counter() - started
    detector.close()
    return frames / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8], help="camera counts (default 1 2 4 8)")
    parser.add_argument("--seconds", type=float, default=30, help="seconds counted per run (default 30)")
    parser.add_argument("--fps-cap", type=float, default=5, help="each camera's fps_cap (default 5)")
    parser.add_argument("--detector", choices=("per-camera", "shared", "both"), default="per-camera",
                        help="each worker its own detector, one shared detector service (throughput hint), or both "
                             "in turn (default per-camera)")  # fmt: skip
    parser.add_argument(
        "--motion",
        choices=("off", "on", "both"),
        default="off",
        help="motion gating off, on, or both in turn (default off)",
    )
    parser.add_argument(
        "--detector-section",
        default="",
        metavar="YAML",
        help="a mapping merged into the profile's detector, e.g. another model (default: x86.yaml's)",
    )
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_appliance(Path(args.one[0]), float(args.one[1]), Path(args.one[2]))
        return 0
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    video = feed()
    rows = []
    server = RtspServer(video, h264=True)
    try:
        both = [False, True]
        modes = {"per-camera": [False], "shared": [True], "both": both}[args.detector]
        motions = {"off": [False], "on": [True], "both": both}[args.motion]
        for cameras in args.cameras:
            for shared in modes:
                for motion in motions:
                    setup = Setup(cameras, shared, motion, args.fps_cap, args.detector_section)
                    print(f"bench: {setup} ...", file=sys.stderr, flush=True)
                    rows.append(measure(setup, args.seconds, server.url))
    finally:
        server.kill()
    print_table(rows, detector_ceiling(video, args.detector_section))
    return 0


def print_table(rows: list[dict[str, float]], ceiling: float) -> None:
    print("| cameras | detector | motion gating | analysed fps per camera (min / median) | total | total / ceiling | "
          "CPU (% of one core) | RSS supervisor / worker (MB) | PSS all (MB) | capture -> result median / p95 (ms) | "
          "dropped / s | skipped by cap / motion / s |\n|---|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        mode, motion = "shared" if r["shared"] else "per camera", "on" if r["motion"] else "off"
        print(f"| {r['cameras']:.0f} | {mode} | {motion} | {r['min']:.2f} / {r['median']:.2f} | {r['total']:.1f} | "
              f"{r['total'] / ceiling:.2f} | {r['cpu']:.0f} % | {r['supervisor_mb']:.0f} / {r['worker_mb']:.0f} | "
              f"{r['pss_mb']:.0f} | {r['latency_median']:.0f} / {r['latency_p95']:.0f} | {r['dropped']:.1f} | "
              f"{r['skipped']:.1f} / {r['motion_skipped']:.1f} |")  # fmt: skip
    print(f"\nThe benchmarked detector alone on all cores: {ceiling:.1f} frames a second of this feed.")


if __name__ == "__main__":
    sys.exit(main())
