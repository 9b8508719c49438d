"""Runtime benchmark: end-to-end FPS of `appliance run --input` against the detector alone, two
cameras against one, and memory per worker.

    .venv/bin/python bench/runtime.py

Detector-only: `detect()` (prepare, inference, decode) on the PETS09-S2L1 frames, decoded
beforehand, in this process. End-to-end: the real CLI in historical mode on the same 795 frames
(video decode, detection, filtering, tracking, distances, episodes, events to the supervisor,
metrics and the event log), FPS from its own summary line. Two cameras: two such runs at once,
one inference thread each, on the machine's 2 cores.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

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
metrics: {{enabled: false}}
api: {{enabled: false}}
"""


def write_profile(folder: Path, name: str, threads: int) -> Path:
    backend, model, extra = BACKENDS[name]
    path = folder / f"profile-{threads}.yaml"
    text = PROFILE.format(
        backend=backend, model=DATA / model, threads=threads, extra=extra, video=VIDEO, data_dir=folder / "data"
    )
    path.write_text(text)
    return path


def detector_only_fps(profile: Path, frames: list) -> float:  # type: ignore[type-arg]
    detector = create_detector(load_profile(profile).profile.detector)
    detector.detect(frames[0])
    started = time.perf_counter()
    for frame in frames:
        detector.detect(frame)
    return len(frames) / (time.perf_counter() - started)


def start_run(profile: Path) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "appliance",
        "--log-level",
        "info",
        "run",
        "--profile",
        str(profile),
        "--input",
        str(VIDEO),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_run(process: subprocess.Popen[str]) -> tuple[float, float]:
    """(end-to-end fps, worker peak MB) from the run's log."""
    output, _ = process.communicate(timeout=1800)
    fps = re.search(r"camera cam: \d+ frames in [\d.]+ s, ([\d.]+) fps", output)
    memory = re.search(r"peak memory (\d+) MB", output)
    if process.returncode or not fps or not memory:
        raise RuntimeError(f"run failed:\n{output[-2000:]}")
    return float(fps[1]), float(memory[1])


def main() -> int:
    capture, frames = cv2.VideoCapture(str(VIDEO)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    columns = ["backend", "detector-only fps", "end-to-end fps", "ratio", "worker peak RSS MB"]
    columns += ["two cameras: total fps", "two cameras / one"]
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for name in BACKENDS:
        with tempfile.TemporaryDirectory() as folder:
            one = write_profile(Path(folder), name, threads=2)
            alone = detector_only_fps(one, frames)
            e2e, memory = finish_run(start_run(one))
            half = write_profile(Path(folder), name, threads=1)
            pair = [start_run(half), start_run(half)]
            both = sum(finish_run(p)[0] for p in pair)
        cells = [name, f"{alone:.1f}", f"{e2e:.1f}", f"{e2e / alone:.2f}", f"{memory:.0f}", f"{both:.1f}"]
        print("| " + " | ".join([*cells, f"{both / e2e:.2f}"]) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
