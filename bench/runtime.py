"""Runtime benchmark: end-to-end FPS of `appliance run --input` against the detector alone, two
cameras against one, memory per worker, and the supervisor's own CPU time per frame.

    .venv/bin/python bench/runtime.py [--repeats 3] [--backend NAME ...]

For each CPU backend, each repeat measures, one after the other:
- detector alone: `detect()` (prepare, inference, decode) on the PETS09-S2L1 frames, decoded
  beforehand, in this process, with the whole machine to itself;
- end to end: the real CLI in historical mode on the same 795 frames (video decode, detection,
  filtering, tracking, distances, episodes, events to the supervisor, Prometheus metrics and the
  event log), FPS from its own summary line, which also gives the detector's FPS inside that run;
- two cameras: two such runs at once, one inference thread each, on the machine's cores.
Each figure is the median over the repeats: this machine's speed drifts between runs by more
than the differences measured, so single runs cannot judge a 0.9 ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from appliance.config import load_profile
from appliance.runtime.detectors import create_detector

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
BACKENDS = {  # name: (backend, model in the data kit, other detector settings)
    "opencv DNN YOLOX-nano": ("opencv", "models/yolox_nano_onnx/yolox_nano.onnx", "input_size: [416, 416]"),
    "onnxruntime YOLOX-nano": ("onnxruntime", "models/yolox_nano_onnx/yolox_nano.onnx", ""),
    "onnxruntime YOLOv8n": ("onnxruntime", "models/yolov8n_onnx/yolov8n.onnx", ""),
    "openvino retail-0013": (
        "openvino",
        "models/openvino/person-detection-retail-0013/FP32/person-detection-retail-0013.xml",
        "class_id: 1",
    ),
    "tflite SSD MobileNet v1": ("tflite", "models/ssd_mobilenet_v1_coco_quant/detect.tflite", ""),
}
PROFILE = """device: {{id: bench}}
detector:
  backend: {backend}
  model: {{path: {model}}}
  threads: {threads}
  {extra}
cameras: [{{id: cam, source: {video}}}]
storage: {{data_dir: {data_dir}}}
metrics: {{listen: "127.0.0.1:{port}"}}
api: {{enabled: false}}
"""
READY = "ready: every camera is open"
SUMMARY = re.compile(r"camera cam: (\d+) frames in [\d.]+ s, ([\d.]+) fps; the detector alone: ([\d.]+) fps")


@dataclass(frozen=True)
class Run:
    fps: float
    detector_fps: float  # the detect stage inside the same run
    peak_mb: float
    supervisor_ms_per_frame: float  # CPU time of the supervisor process (not its workers) per frame, once ready


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_profile(folder: Path, name: str, threads: int) -> Path:
    backend, model, extra = BACKENDS[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "profile.yaml"
    text = PROFILE.format(
        backend=backend,
        model=DATA / model,
        threads=threads,
        extra=extra,
        video=VIDEO,
        data_dir=folder / "data",
        port=free_port(),
    )
    path.write_text(text)
    return path


def detector_only_fps(profile: Path, frames: list[np.ndarray]) -> float:
    detector = create_detector(load_profile(profile).profile.detector)
    detector.detect(frames[0])
    started = time.perf_counter()
    for frame in frames:
        detector.detect(frame)
    elapsed = time.perf_counter() - started
    detector.close()
    return len(frames) / elapsed


def start_run(profile: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "appliance", "--log-level", "info", "run", "--profile", str(profile)]
    command += ["--input", str(VIDEO)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of one process (its children not included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def finish_run(process: subprocess.Popen[str]) -> Run:
    """Wait for the run, sampling the supervisor's CPU time from when it is ready (its imports and
    start-up are not per-frame work) until it exits."""
    chunks: list[str] = []
    at_ready: list[float] = []

    def read() -> None:
        for line in process.stdout or ():
            if READY in line and not at_ready:
                at_ready.append(cpu_seconds(process.pid) or 0.0)
            chunks.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    supervisor_cpu = 0.0
    while process.poll() is None:
        supervisor_cpu = cpu_seconds(process.pid) or supervisor_cpu
        time.sleep(0.1)
    reader.join(30)
    supervisor_cpu -= at_ready[0] if at_ready else 0.0
    output = "".join(chunks)
    summary = SUMMARY.search(output)
    memory = re.search(r"peak memory (\d+) MB", output)
    if process.returncode or not summary or not memory:
        raise RuntimeError(f"run failed:\n{output[-2000:]}")
    frames, fps, detector_fps = int(summary[1]), float(summary[2]), float(summary[3])
    return Run(fps, detector_fps, float(memory[1]), 1000 * supervisor_cpu / frames)


def measure(name: str, frames: list[np.ndarray], repeats: int, folder: Path) -> list[str]:
    """One table row: medians over `repeats` rounds of alone, end to end, and two cameras."""
    alone, runs, pairs = [], [], []
    for round_ in range(repeats):
        one = write_profile(folder / f"{round_}-one", name, threads=2)
        alone.append(detector_only_fps(one, frames))
        runs.append(finish_run(start_run(one)))
        halves = [write_profile(folder / f"{round_}-pair{i}", name, threads=1) for i in (0, 1)]
        pair = [start_run(half) for half in halves]
        pairs.append(sum(finish_run(process).fps for process in pair))
        progress = f"alone {alone[-1]:.1f}, {runs[-1]}, two cameras {pairs[-1]:.1f}"
        print(f"  {name} round {round_ + 1}: {progress}", flush=True)
    e2e = statistics.median(r.fps for r in runs)
    cells = [
        statistics.median(alone),
        e2e,
        statistics.median(r.fps / a for r, a in zip(runs, alone, strict=True)),
        statistics.median(r.detector_fps for r in runs),
        statistics.median(r.fps / r.detector_fps for r in runs),
        max(r.peak_mb for r in runs),
        statistics.median(r.supervisor_ms_per_frame for r in runs),
        statistics.median(pairs),
        statistics.median(pairs) / e2e,
    ]
    formats = ["{:.1f}", "{:.1f}", "{:.2f}", "{:.1f}", "{:.2f}", "{:.0f}", "{:.2f}", "{:.1f}", "{:.2f}"]
    return [name, *(f.format(value) for f, value in zip(formats, cells, strict=True))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds per backend; figures are medians")
    parser.add_argument("--backend", action="append", choices=list(BACKENDS), help="only these (repeatable)")
    args = parser.parse_args()
    capture, frames = cv2.VideoCapture(str(VIDEO)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.backend or BACKENDS:
            rows.append(measure(name, frames, args.repeats, Path(folder) / name.replace(" ", "-")))
    columns = ["backend", "detector alone fps", "end-to-end fps", "ratio", "detector in the run fps", "ratio in run"]
    columns += ["worker peak RSS MB", "supervisor CPU ms/frame", "two cameras: total fps", "two cameras / one"]
    print("\n| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
