"""Every backend that runs here, on real PETS09-S2L1 frames, checked against the ground truth.

IoU 0.5 matching makes a wrong letterbox, scale or swapped coordinate fail. Backends whose
hardware or package is absent here (Edge TPU, TensorRT, ultralytics) are tested up to that
boundary: their error says what is missing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from appliance.config import load_profile
from appliance.config.model import DetectorConfig
from appliance.models import ModelError
from appliance.runtime.detectors import DetectorError, create_detector
from appliance.runtime.detectors.heads import infer_architecture
from appliance.runtime.types import Image
from evaluation import DetectionScore, load_mot_ground_truth
from tests.conftest import PETS_TRUTH, PETS_VIDEO, PROFILES, read_frames

FRAME_NUMBERS = range(1, 795, 40)  # 20 frames across the sequence


@dataclass(frozen=True)
class Model:
    name: str
    backend: str
    path: str | None
    min_precision: float
    min_recall: float
    class_id: int = 0
    min_score: float = 0.25
    architecture: str = "auto"
    input_size: tuple[int, int] | None = None


MODELS = [
    Model("onnxruntime-yolov8n", "onnxruntime", "models/yolov8n_onnx/yolov8n.onnx", 0.8, 0.85),
    Model("onnxruntime-yolox-nano", "onnxruntime", "models/yolox_nano_onnx/yolox_nano.onnx", 0.7, 0.85),
    Model(
        "openvino-retail-0013",
        "openvino",
        "models/openvino/person-detection-retail-0013/FP32/person-detection-retail-0013.xml",
        0.85,
        0.7,
        class_id=1,
        min_score=0.5,
    ),
    Model(
        "openvino-adas-0002",
        "openvino",
        "models/openvino/pedestrian-detection-adas-0002/FP16/pedestrian-detection-adas-0002.xml",
        0.85,
        0.7,
        class_id=1,
        min_score=0.5,
    ),
    Model("openvino-yolox-nano-onnx", "openvino", "models/yolox_nano_onnx/yolox_nano.onnx", 0.7, 0.85),
    Model(
        "tflite-ssd-mobilenet-v1",
        "tflite",
        "models/ssd_mobilenet_v1_coco_quant/detect.tflite",
        0.5,
        0.6,
        min_score=0.5,
    ),
    Model("tflite-yolov8n-int8", "tflite", "models/yolov8n_tflite/yolov8n_int8.tflite", 0.8, 0.85),
    Model(
        "tflite-yolov8n-full-int8",
        "tflite",
        "models/yolov8n_tflite/yolov8n_full_integer_quant.tflite",
        0.75,
        0.85,
    ),
    Model(
        "opencv-dnn-yolox-nano",
        "opencv",
        "models/yolox_nano_onnx/yolox_nano.onnx",
        0.7,
        0.85,
        architecture="yolox",
        input_size=(416, 416),
    ),
    Model("opencv-hog-1.5x", "opencv", None, 0.45, 0.5, min_score=0.0, input_size=(1152, 864)),
]


@pytest.fixture(scope="module")
def pets(data: Path) -> tuple[dict[int, Image], dict[int, list]]:  # type: ignore[type-arg]
    return read_frames(data / PETS_VIDEO, FRAME_NUMBERS), load_mot_ground_truth(data / PETS_TRUTH)


def base_config() -> DetectorConfig:
    return load_profile(PROFILES / "base.yaml").profile.detector


def config_for(model: Model, data: Path) -> DetectorConfig:
    base = base_config()
    path = str(data / model.path) if model.path else None
    return replace(
        base,
        backend=model.backend,
        model=replace(base.model, path=path, architecture=model.architecture),
        class_id=model.class_id,
        min_score=model.min_score,
        input_size=model.input_size,
        threads=2,
    )


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_backend_finds_the_people_of_the_ground_truth(model: Model, data: Path, pets) -> None:  # type: ignore[no-untyped-def]
    frames, truth = pets
    detector = create_detector(config_for(model, data))
    score = DetectionScore()
    for number, image in frames.items():
        detections = detector.detect(image)
        assert all(d.class_id == model.class_id for d in detections)
        score.add_frame(detections, truth.get(number, []))
    detector.close()
    precision, recall = score.precision_recall()
    assert precision >= model.min_precision, f"precision {precision:.2f}"
    assert recall >= model.min_recall, f"recall {recall:.2f}"


def test_detections_on_a_still_lie_inside_the_image(data: Path) -> None:
    import cv2

    image = cv2.imread(str(data / "stills" / "bus.jpg"))
    model = next(m for m in MODELS if m.name == "onnxruntime-yolox-nano")
    detections = create_detector(config_for(model, data)).detect(image)
    assert 3 <= len(detections) <= 6
    height, width = image.shape[:2]
    for d in detections:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert y2 - y1 > x2 - x1  # standing people are taller than wide


def test_default_profile_runs_with_no_download_and_logs_its_detector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_profile(PROFILES / "x86.yaml").profile.detector
    with caplog.at_level(logging.INFO, logger="appliance"):
        detector = create_detector(config)
    assert detector.backend == "openvino"
    assert "detector: openvino ssd 640x480" in caplog.text and "person-detection-retail-0013.xml" in caplog.text


def test_frames_detected_together_are_detected_as_one_by_one(pets) -> None:  # type: ignore[no-untyped-def]
    """What the shared detector service relies on: OpenVINO's throughput hint runs several
    inferences at once (`detect_all`), and each frame gets what `detect` alone gives it."""
    frames, _ = pets
    images = list(frames.values())[:7]
    config = replace(load_profile(PROFILES / "x86.yaml").profile.detector, performance_hint="throughput", threads=2)
    detector = create_detector(config)
    together, alone = detector.detect_all(images), [detector.detect(image) for image in images]
    detector.close()
    assert "at once" in detector.describe()
    assert [len(found) for found in together] == [len(found) for found in alone]
    assert sum(map(len, alone)) >= 7 * 3
    for found_together, found_alone in zip(together, alone, strict=True):
        for a, b in zip(found_together, found_alone, strict=True):
            assert a.box == pytest.approx(b.box, abs=0.5) and a.score == pytest.approx(b.score, abs=1e-3)


def test_wrong_sha256_refuses_to_start(data: Path) -> None:
    model = next(m for m in MODELS if m.name == "onnxruntime-yolox-nano")
    config = config_for(model, data)
    config = replace(config, model=replace(config.model, sha256="0" * 64))
    with pytest.raises(
        ModelError,
        match=r"has sha256 d39bee73.*but detector.model.sha256 is 0{64}: refusing to start",
    ):
        create_detector(config)


def test_right_sha256_starts(data: Path) -> None:
    model = next(m for m in MODELS if m.name == "onnxruntime-yolox-nano")
    config = config_for(model, data)
    sha = "d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a"
    assert create_detector(replace(config, model=replace(config.model, sha256=sha))).head.architecture == "yolox"


def test_missing_model_file_says_how_to_get_one(tmp_path: Path) -> None:
    base = base_config()
    config = replace(base, backend="onnxruntime", model=replace(base.model, path=str(tmp_path / "absent.onnx")))
    with pytest.raises(ModelError, match=r"absent.onnx does not exist; .*appliance models fetch"):
        create_detector(config)


def test_corrupt_model_file_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not a protobuf" * 100)
    base = base_config()
    config = replace(base, backend="onnxruntime", model=replace(base.model, path=str(corrupt)))
    with pytest.raises(DetectorError, match=r"ONNX Runtime cannot load .*corrupt.onnx"):
        create_detector(config)


def test_edge_tpu_model_on_the_cpu_backend_names_the_right_backend(data: Path) -> None:
    base = base_config()
    path = data / "models/yolov8n_tflite/yolov8n_full_integer_quant_edgetpu.tflite"
    config = replace(base, backend="tflite", model=replace(base.model, path=str(path)))
    with pytest.raises(DetectorError, match=r"compiled for the Edge TPU: use detector\.backend edgetpu"):
        create_detector(config)


def test_edge_tpu_without_its_runtime_fails_at_start_with_what_to_install(data: Path) -> None:
    """Boundary test: no Edge TPU runtime or device on this machine."""
    base = base_config()
    path = data / "models/yolov8n_tflite/yolov8n_full_integer_quant_edgetpu.tflite"
    config = replace(base, backend="edgetpu", device="usb:0", model=replace(base.model, path=str(path)))
    with pytest.raises(
        DetectorError,
        match=r"cannot open the Edge TPU 'usb:0' through libedgetpu.so.1: .*libedgetpu1-std",
    ):
        create_detector(config)


@pytest.mark.parametrize(("backend", "extra"), [("tensorrt", "tensorrt"), ("ultralytics", "ultralytics")])
def test_backend_without_its_package_names_the_extra(backend: str, extra: str, data: Path) -> None:
    """Boundary test: TensorRT and ultralytics are not installed here (no GPU, no torch)."""
    base = base_config()
    path = data / (
        "models/yolox_nano_onnx/yolox_nano.onnx" if backend == "tensorrt" else "models/yolov8n_onnx/yolov8n.pt"
    )
    config = replace(base, backend=backend, model=replace(base.model, path=str(path)))
    with pytest.raises(DetectorError, match=rf"needs the Python package '{backend}'.*install the '{extra}' extra"):
        create_detector(config)


@pytest.mark.parametrize(
    ("shapes", "architecture"),
    [
        ([[1, 84, 8400]], "yolov8"),
        ([[1, 3549, 85]], "yolox"),
        ([[1, 1, 200, 7]], "ssd"),
        ([[1, 10, 4], [1, 10], [1, 10], [1]], "ssd-postprocess"),
        ([[1, 1000]], "unknown"),
    ],
)
def test_architecture_is_inferred_from_output_shapes(shapes: list[list[int]], architecture: str) -> None:
    assert infer_architecture(shapes) == architecture
