"""Detector benchmark: accuracy against MOT ground truth and per-stage latency, per backend and model.

    .venv/bin/python bench/detect.py                 # every model that runs here, table on stdout
    .venv/bin/python bench/detect.py --models onnxruntime-yolox-nano --step 10

Each model runs in its own process so that its peak RSS is its own. Accuracy: precision and recall
at the model's operating point, AP50 over every detection scoring 0.05 or more, IoU 0.5, flag-0
boxes don't-care; PETS09-S2L1 every 3rd frame, TUD-Stadtmitte every frame (as in the data kit's
MANIFEST). Latency: medians over all those frames of video decode, prepare (resize, letterbox,
tensor), inference, and decode (output decoding, threshold, NMS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2

from appliance.config import load_profile
from appliance.runtime.detectors import create_detector
from evaluation import DetectionScore, load_mot_ground_truth

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {  # name: (video, ground truth, frame step)
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt", 3),
    "TUD-Stadtmitte": (
        "sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4",
        "sequences/TUD-Stadtmitte/gt/gt.txt",
        1,
    ),
}
AP_MIN_SCORE = 0.05
F1_THRESHOLDS = [round(0.05 * step, 2) for step in range(1, 20)]  # the operating-threshold rule's grid


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str
    path: str | None  # relative to the data kit
    operating_score: float
    class_id: int = 0
    architecture: str = "auto"
    input_size: tuple[int, int] | None = None


MODELS = [
    ModelSpec("opencv-hog", "opencv", None, 0.0),
    ModelSpec("opencv-hog-1.5x", "opencv", None, 0.0, input_size=(1152, 864)),
    ModelSpec(
        "opencv-dnn-yolox-nano",
        "opencv",
        "models/yolox_nano_onnx/yolox_nano.onnx",
        0.25,
        architecture="yolox",
    ),
    ModelSpec("onnxruntime-yolov8n", "onnxruntime", "models/yolov8n_onnx/yolov8n.onnx", 0.25),
    ModelSpec("onnxruntime-yolox-nano", "onnxruntime", "models/yolox_nano_onnx/yolox_nano.onnx", 0.25),
    ModelSpec(
        "openvino-retail-0013",
        "openvino",
        "models/openvino/person-detection-retail-0013/FP32/person-detection-retail-0013.xml",
        0.5,
        class_id=1,
    ),
    ModelSpec(
        "openvino-retail-0013-640x480",
        "openvino",
        "models/openvino/person-detection-retail-0013/FP32/person-detection-retail-0013.xml",
        0.5,
        class_id=1,
        input_size=(640, 480),
    ),
    ModelSpec(
        "openvino-adas-0002",
        "openvino",
        "models/openvino/pedestrian-detection-adas-0002/FP16/pedestrian-detection-adas-0002.xml",
        0.5,
        class_id=1,
    ),
    ModelSpec("openvino-yolov8n", "openvino", "models/yolov8n_onnx/yolov8n.onnx", 0.25),
    ModelSpec("openvino-yolox-nano", "openvino", "models/yolox_nano_onnx/yolox_nano.onnx", 0.25),
    *(
        ModelSpec(
            f"openvino-{name}-{precision.lower()}", "openvino", f"models/openvino/{name}/{precision}/{name}.xml", 0.5
        )
        for name, precision in (
            ("person-detection-0200", "FP16"),
            ("person-detection-0201", "FP16"),
            ("person-detection-0201", "FP16-INT8"),
            ("person-detection-0202", "FP16"),
        )
    ),
    ModelSpec("tflite-ssd-mobilenet-v1", "tflite", "models/ssd_mobilenet_v1_coco_quant/detect.tflite", 0.5),
    ModelSpec("tflite-yolov8n-int8", "tflite", "models/yolov8n_tflite/yolov8n_int8.tflite", 0.25),
    ModelSpec(
        "tflite-yolov8n-full-int8",
        "tflite",
        "models/yolov8n_tflite/yolov8n_full_integer_quant.tflite",
        0.25,
    ),
]


def run_one(spec: ModelSpec, threads: int, step_override: int | None) -> dict[str, object]:
    base = load_profile(REPO / "profiles" / "base.yaml").profile.detector
    model = replace(
        base.model,
        path=str(DATA / spec.path) if spec.path else None,
        architecture=spec.architecture,
    )
    config = replace(
        base,
        backend=spec.backend,
        model=model,
        class_id=spec.class_id,
        min_score=AP_MIN_SCORE,
        threads=threads,
        input_size=spec.input_size,
    )
    detector = create_detector(config)
    result: dict[str, object] = {"model": spec.name, "detector": detector.describe()}
    stages: dict[str, list[float]] = {"decode": [], "prepare": [], "infer": [], "postprocess": []}
    pooled = DetectionScore()
    for sequence, (video, gt, step) in SEQUENCES.items():
        truth = load_mot_ground_truth(DATA / gt)
        score = DetectionScore()
        capture = cv2.VideoCapture(str(DATA / video))
        index = 0
        while True:
            started = time.perf_counter()
            ok, frame = capture.read()
            decoded = time.perf_counter()
            if not ok:
                break
            index += 1
            if (index - 1) % (step_override or step):
                continue
            tensor, placement = detector.prepare(frame)
            prepared = time.perf_counter()
            outputs = detector.infer(tensor)
            inferred = time.perf_counter()
            detections = detector.decode(outputs, placement)
            finished = time.perf_counter()
            for stage, seconds in zip(
                stages,
                (decoded - started, prepared - decoded, inferred - prepared, finished - inferred),
                strict=True,
            ):
                stages[stage].append(seconds * 1000)
            score.add_frame(detections, truth.get(index, []))
        pooled = pooled.merged(score)
        precision, recall = score.precision_recall(spec.operating_score)
        result[sequence] = {
            "precision": precision,
            "recall": recall,
            "ap50": score.average_precision(),
            "f1": [score.f1(threshold) for threshold in F1_THRESHOLDS],
        }
    result["best_f1"] = pooled.best_f1(F1_THRESHOLDS)
    result["pooled_ap50"] = pooled.average_precision()
    medians = {stage: statistics.median(values) for stage, values in stages.items()}
    result.update(
        frames=len(stages["infer"]),
        ms=medians,
        e2e_ms=statistics.median(sum(v) for v in zip(*stages.values(), strict=True)),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return result


COLUMNS = [
    "model",
    "detector",
    "PETS09-S2L1 P / R / AP50",
    "TUD-Stadtmitte P / R / AP50",
    "best-F1 threshold (F1), both pooled",
    "inference ms",
    "prepare ms",
    "postprocess ms",
    "video decode ms",
    "e2e ms",
    "our overhead",
    "with video decode",
    "peak RSS MB",
]


def table(results: list[dict[str, object]]) -> str:
    """Markdown table; overheads are (prepare + postprocess) and (the same + video decode) over inference."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | not run here: {r['error']} |" + " |" * (len(COLUMNS) - 2))
            continue
        ms = r["ms"]
        assert isinstance(ms, dict)
        accuracy = ["{precision:.2f} / {recall:.2f} / {ap50:.2f}".format(**r[s]) for s in SEQUENCES]  # type: ignore[arg-type]
        ours = (ms["prepare"] + ms["postprocess"]) / ms["infer"]
        with_decode = ours + ms["decode"] / ms["infer"]
        cells = [
            r["model"],
            r["detector"],
            *accuracy,
            "{:.2f} ({:.3f})".format(*r["best_f1"]),  # type: ignore[str-format]
            f"{ms['infer']:.1f}",
            f"{ms['prepare']:.1f}",
            f"{ms['postprocess']:.1f}",
            f"{ms['decode']:.1f}",
            f"{r['e2e_ms']:.1f}",
            f"{ours:.0%}",
            f"{with_decode:.0%}",
            f"{r['peak_rss_mb']:.0f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


RULE_CANDIDATES = [
    "openvino-retail-0013",
    "openvino-retail-0013-640x480",
    "openvino-person-detection-0200-fp16",
    "openvino-person-detection-0201-fp16",
    "openvino-person-detection-0201-fp16-int8",
    "openvino-person-detection-0202-fp16",
    "onnxruntime-yolox-nano",
]


def robustness(result: dict[str, object]) -> dict[str, float]:
    """The rule of docs/detectors.md: each sequence's best threshold applied to the other, and
    the maximin threshold."""
    pets, tud = (result[s]["f1"] for s in SEQUENCES)  # type: ignore[index]
    best_pets, best_tud = (max(range(len(f1)), key=lambda i, f1=f1: (f1[i], -i)) for f1 in (pets, tud))
    lower = [min(a, b) for a, b in zip(pets, tud, strict=True)]
    maximin = max(range(len(lower)), key=lambda i: (lower[i], -i))
    return {
        "pets_threshold": F1_THRESHOLDS[best_pets], "pets_f1": pets[best_pets],
        "tud_threshold": F1_THRESHOLDS[best_tud], "tud_f1": tud[best_tud],
        "tud_at_pets": tud[best_pets], "pets_at_tud": pets[best_tud],
        "robustness": min(tud[best_pets], pets[best_tud]),
        "maximin_threshold": F1_THRESHOLDS[maximin], "maximin_pets": pets[maximin], "maximin_tud": tud[maximin],
    }  # fmt: skip


def rule_table(results: list[dict[str, object]]) -> str:
    """The robustness of each model, and the one the rule chooses."""
    ran = [r for r in results if "error" not in r]
    scores = {str(r["model"]): robustness(r) for r in ran}
    best_robustness = max(s["robustness"] for s in scores.values())
    best_ap = max(float(r["pooled_ap50"]) for r in ran)  # type: ignore[arg-type]
    eligible = [r for r in ran if scores[str(r["model"])]["robustness"] >= best_robustness - 0.01
                and float(r["pooled_ap50"]) >= best_ap - 0.02]  # type: ignore[arg-type]  # fmt: skip
    chosen = min(eligible, key=lambda r: r["ms"]["infer"])["model"] if eligible else None  # type: ignore[index]
    lines = ["| model | PETS best threshold (F1) | TUD best threshold (F1) | TUD F1 at PETS's | PETS F1 at TUD's | "
             "robustness | maximin threshold (PETS / TUD F1) | pooled AP50 | inference ms |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in ran:
        s, name = scores[str(r["model"])], str(r["model"])
        label = f"**{name}** (chosen)" if name == chosen else name
        cells = [
            label, f"{s['pets_threshold']:.2f} ({s['pets_f1']:.3f})", f"{s['tud_threshold']:.2f} ({s['tud_f1']:.3f})",
            f"{s['tud_at_pets']:.3f}", f"{s['pets_at_tud']:.3f}", f"{s['robustness']:.3f}",
            f"{s['maximin_threshold']:.2f} ({s['maximin_pets']:.3f} / {s['maximin_tud']:.3f})",
            f"{r['pooled_ap50']:.3f}", f"{r['ms']['infer']:.1f}",  # type: ignore[index]
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    verdict = f"the rule chooses {chosen}" if chosen else "no model is within both margins: the rule chooses none"
    return "\n".join([*lines, "", f"Best robustness {best_robustness:.3f}, best pooled AP50 {best_ap:.3f}: {verdict}."])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=[m.name for m in MODELS], help="models to run (default: all)")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="inference threads (default: all cores)",
    )
    parser.add_argument("--step", type=int, help="use every Nth frame of both sequences instead of the kit's steps")
    parser.add_argument("--rule", action="store_true",
                        help="the default detector's candidates and the rule's table (docs/detectors.md)")  # fmt: skip
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = next(m for m in MODELS if m.name == args.one)
        print(json.dumps(run_one(spec, args.threads, args.step)))
        return 0
    results = []
    chosen = args.models or (RULE_CANDIDATES if args.rule else None)
    for spec in [m for m in MODELS if not chosen or m.name in chosen]:
        print(f"bench: {spec.name} ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--one", spec.name, "--threads", str(args.threads)]
        if args.step:
            command += ["--step", str(args.step)]
        child = subprocess.run(command, capture_output=True, text=True, check=False)
        if child.returncode:
            results.append({"model": spec.name, "error": (child.stderr.strip().splitlines() or ["failed"])[-1]})
        else:
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"Machine: {machine}, OpenCV {cv2.__version__}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print(table(results))
    if args.rule:
        print(f"\n{rule_table(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
