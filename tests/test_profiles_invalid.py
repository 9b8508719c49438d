"""Invalid profiles: each gives exactly the expected messages, at the right file, line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.config import ProfileError, load_profile
from appliance.config.yamlio import MAX_PROFILE_BYTES
from tests.conftest import WriteFiles, run_cli


@dataclass
class Case:
    id: str
    profile: str | bytes
    expected: list[str]
    other_files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


CAMERA = """
    device: {id: test}
    cameras:
      - id: cam1
        source: %s
"""

CASES = [
    Case(
        "wrong-type-number",
        """
        device: {id: test}
        detector:
          min_score: high
        """,
        ["p.yaml:3:14 detector.min_score: expected number, got string 'high'"],
    ),
    Case(
        "wrong-type-boolean",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            enabled: "yes"
        """,
        ["p.yaml:5:14 cameras[0].enabled: expected boolean, got string 'yes'"],
    ),
    Case(
        "wrong-type-section",
        """
        device: {id: test}
        mqtt: localhost
        """,
        ["p.yaml:2:7 mqtt: expected object, got string 'localhost'"],
    ),
    Case(
        "unknown-top-level-key",
        """
        device: {id: test}
        camera: []
        """,
        [
            "p.yaml:2:1 camera: unknown key 'camera'; did you mean 'cameras'? expected one of: "
            "extends, schema_version, device, detector, tracker, motion, cameras, areas, distancing, anonymizer, "
            "masks, mqtt, metrics, api, notifications, s3, storage, ota, logging, runtime"
        ],
    ),
    Case(
        "unknown-nested-key",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            fps: 5
        """,
        [
            "p.yaml:5:5 cameras[0].fps: unknown key 'fps'; did you mean 'fps_cap'? expected one of: "
            "id, name, source, enabled, fps_cap, resolution, distance, roi, tags, live_view, box_filter, zones, lines"
        ],
    ),
    Case(
        "missing-required-device",
        """
        cameras: []
        """,
        ["p.yaml:1:1 device: required key is missing"],
    ),
    Case(
        "missing-required-source",
        """
        device: {id: test}
        cameras:
          - id: cam1
        """,
        ["p.yaml:3:5 cameras[0].source: required key is missing"],
    ),
    Case(
        "bad-enum-distance-method",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            distance:
              method: Calibrated
        """,
        [
            "p.yaml:6:15 cameras[0].distance.method: 'Calibrated' is not one of "
            "['center_points', 'four_corners', 'calibrated']"
        ],
    ),
    Case(
        "bad-enum-backend",
        """
        device: {id: test}
        detector:
          backend: cuda
        """,
        [
            "p.yaml:3:12 detector.backend: 'cuda' is not one of "
            "['opencv', 'onnxruntime', 'openvino', 'tflite', 'edgetpu', 'tensorrt', 'ultralytics']"
        ],
    ),
    Case(
        "out-of-range-number",
        """
        device: {id: test}
        detector:
          min_score: 1.5
        """,
        ["p.yaml:3:14 detector.min_score: 1.5 is greater than the maximum of 1"],
    ),
    Case(
        "bad-identifier",
        """
        device:
          id: Lobby Cam
        """,
        [
            "p.yaml:2:7 device.id: 'Lobby Cam' does not match '^[a-z0-9][a-z0-9_-]{0,62}$' "
            "(Lower-case letters, digits, '_' and '-', starting with a letter or digit)"
        ],
    ),
    Case(
        "bad-sha256",
        """
        device: {id: test}
        detector:
          backend: onnxruntime
          model:
            path: /models/yolox_nano.onnx
            sha256: 1234abcd
        """,
        [
            "p.yaml:6:13 detector.model.sha256: '1234abcd' does not match '^[0-9a-f]{64}$' "
            "(Expected sha256 of the model file)"
        ],
    ),
    Case(
        "bad-url-scheme",
        CAMERA % "htp://192.168.1.20/stream",
        [
            "p.yaml:4:13 cameras[0].source: URL scheme 'htp' is not supported; "
            "expected one of: rtsp, rtsps, http, https, file"
        ],
    ),
    Case(
        "url-without-host",
        CAMERA % "rtsp:///stream1",
        ["p.yaml:4:13 cameras[0].source: URL 'rtsp:///stream1' has no host"],
    ),
    Case(
        "url-bad-port",
        CAMERA % "rtsp://cam.local:99999/stream1",
        ["p.yaml:4:13 cameras[0].source: URL 'rtsp://cam.local:99999/stream1' has an invalid port"],
    ),
    Case(
        "url-with-space",
        CAMERA % "'http://cam.local/live stream.mjpg'",
        ["p.yaml:4:13 cameras[0].source: URL 'http://cam.local/live stream.mjpg' contains whitespace"],
    ),
    Case(
        "duplicate-camera-ids",
        """
        device: {id: test}
        cameras:
          - id: lobby
            source: /dev/video0
          - id: lobby
            source: /dev/video1
        """,
        ["p.yaml:5:9 cameras[1].id: duplicate camera id 'lobby' (also cameras[0])"],
    ),
    Case(
        "duplicate-area-ids",
        """
        device: {id: test}
        cameras:
          - {id: cam1, source: /dev/video0}
        areas:
          - {id: hall, cameras: [cam1]}
          - {id: hall, cameras: [cam1]}
        """,
        ["p.yaml:6:10 areas[1].id: duplicate area id 'hall' (also areas[0])"],
    ),
    Case(
        "area-names-unknown-camera",
        """
        device: {id: test}
        cameras:
          - {id: cam1, source: /dev/video0}
        areas:
          - id: hall
            cameras: [cam1, cam2]
        """,
        ["p.yaml:6:21 areas[0].cameras[1]: unknown camera 'cam2' (cameras: cam1)"],
    ),
    Case(
        "calibration-with-3-points",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            distance:
              method: calibrated
              calibration:
                - {image: [0, 0], floor: [0, 0]}
                - {image: [100, 0], floor: [300, 0]}
                - {image: [100, 100], floor: [300, 300]}
        """,
        ["p.yaml:8:9 cameras[0].distance.calibration: calibration needs at least 4 points, got 3"],
    ),
    Case(
        "calibration-collinear",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            distance:
              method: calibrated
              calibration:
                - {image: [0, 0], floor: [0, 0]}
                - {image: [100, 0], floor: [300, 0]}
                - {image: [200, 0], floor: [300, 300]}
                - {image: [300, 0], floor: [0, 300]}
        """,
        [
            "p.yaml:8:9 cameras[0].distance.calibration: image points are degenerate: "
            "no 4 of them have no three on a line"
        ],
    ),
    Case(
        "calibrated-without-points",
        """
        device: {id: test}
        distancing:
          default_method: calibrated
        cameras:
          - id: cam1
            source: /dev/video0
        """,
        ["p.yaml:5:5 cameras[0].distance.calibration: the 'calibrated' distance method needs calibration points"],
    ),
    Case(
        "roi-self-intersecting",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            roi: [[0, 0], [100, 100], [100, 0], [0, 100]]
        """,
        ["p.yaml:5:10 cameras[0].roi: not a simple polygon: self-intersection at (50, 50)"],
    ),
    Case(
        "zones-and-lines",
        """
        device: {id: test, timezone: Mars/Olympus}
        cameras:
          - id: cam1
            source: /dev/video0
            resolution: [640, 480]
            zones:
              - {id: bow, polygon: [[0, 0], [100, 100], [100, 0], [0, 100]]}
              - {id: far, polygon: [[0, 0], [700, 0], [700, 100]]}
              - {id: floor, polygon: [[0, 0], [100, 0], [100, 100]], units: floor_cm}
            lines:
              - {id: dot, points: [[10, 10], [10, 10]]}
              - {id: bow, points: [[-5, 10], [10, 10]]}
        areas:
          - {id: a, cameras: [cam1], zones: [cam1/bow, cam1/nope], entrances: [cam1/far]}
          - {id: b}
        """,
        [
            "p.yaml:1:30 device.timezone: unknown time zone 'Mars/Olympus'; expected an IANA name such as Europe/Paris or UTC",
            "p.yaml:7:28 cameras[0].zones[0].polygon: not a simple polygon: self-intersection at (50, 50)",
            "p.yaml:8:28 cameras[0].zones[1].polygon: point [700, 0] lies outside the 640x480 frame",
            "p.yaml:9:69 cameras[0].zones[2].units: floor_cm needs the camera's distance.calibration, which is not set",
            "p.yaml:11:27 cameras[0].lines[0].points: points 0 and 1 are the same: a segment of zero length",
            "p.yaml:12:14 cameras[0].lines[1].id: duplicate id 'bow' among this camera's zones and lines",
            "p.yaml:12:27 cameras[0].lines[1].points: point [-5, 10] lies outside the 640x480 frame",
            "p.yaml:14:38 areas[0].zones[0]: camera 'cam1' is in this area's cameras already, so its zone would count people twice",
            "p.yaml:14:48 areas[0].zones[1]: camera 'cam1' has no zone 'nope' (zones: bow, far, floor)",
            "p.yaml:14:72 areas[0].entrances[0]: camera 'cam1' has no line 'far' (lines: dot, bow)",
            "p.yaml:15:5 areas[1]: an area needs cameras, zones or entrances to count people by",
        ],
    ),
    Case(
        "severity-out-of-order",
        """
        device: {id: test}
        distancing: {severity: {low_s: 30, high_s: 10}}
        """,
        ["p.yaml:2:24 distancing.severity: expected low_s <= high_s <= critical_s"],
    ),
    Case(
        "roi-two-points",
        """
        device: {id: test}
        cameras:
          - id: cam1
            source: /dev/video0
            roi: [[0, 0], [100, 100]]
        """,
        ["p.yaml:5:10 cameras[0].roi: expected at least 3 items, got 2"],
    ),
    Case(
        "backend-without-model",
        """
        device: {id: test}
        detector:
          backend: onnxruntime
        """,
        ["p.yaml:3:3 detector.model.path: the 'onnxruntime' backend needs a model file"],
    ),
    Case(
        "faces-without-model",
        """
        device: {id: test}
        anonymizer:
          faces: {enabled: true}
        """,
        ["p.yaml:3:10 anonymizer.faces.model.path: faces are enabled: name the face detector's model file"],
    ),
    Case(
        "face-model-of-wrong-kind",
        """
        device: {id: test}
        anonymizer:
          faces: {enabled: true, model: {path: faces.tflite}}
        """,
        ["p.yaml:3:40 anonymizer.faces.model.path: a face detector loads .onnx files, not 'faces.tflite'"],
    ),
    Case(
        "model-of-wrong-kind",
        """
        device: {id: test}
        detector:
          backend: tflite
          model:
            path: /models/yolov8n.onnx
        """,
        ["p.yaml:5:11 detector.model.path: the 'tflite' backend loads .tflite files, not '/models/yolov8n.onnx'"],
    ),
    Case(
        "tls-cert-without-key",
        """
        device: {id: test}
        api:
          tls:
            cert_file: /etc/appliance/api.pem
        """,
        ["p.yaml:4:5 api.tls.key_file: cert_file is set, so key_file is required"],
    ),
    Case(
        "listen-port-out-of-range",
        """
        device: {id: test}
        metrics:
          listen: 0.0.0.0:70000
        """,
        ["p.yaml:3:11 metrics.listen: port 70000 is out of range 1-65535"],
    ),
    Case(
        "cyclic-extends",
        """
        extends: b.yaml
        device: {id: test}
        """,
        ["b.yaml:1:10 extends: cyclic extends: p.yaml -> b.yaml -> p.yaml"],
        other_files={"b.yaml": "extends: p.yaml\n"},
    ),
    Case(
        "self-extends",
        """
        extends: p.yaml
        device: {id: test}
        """,
        ["p.yaml:1:10 extends: cyclic extends: p.yaml -> p.yaml"],
    ),
    Case(
        "extends-missing-file",
        """
        extends: nowhere.yaml
        device: {id: test}
        """,
        ["p.yaml:1:10 extends: extended profile 'nowhere.yaml' does not exist"],
    ),
    Case(
        "error-in-extended-profile",
        """
        extends: b.yaml
        device: {id: test}
        """,
        ["b.yaml:2:9 mqtt.port: expected integer, got string 'mqtt'"],
        other_files={"b.yaml": "mqtt:\n  port: mqtt\n"},
    ),
    Case(
        "missing-environment-secret",
        """
        device: {id: test}
        mqtt:
          password: ${env:APPLIANCE_TEST_UNSET_PASSWORD}
        """,
        ["p.yaml:3:13 mqtt.password: environment variable APPLIANCE_TEST_UNSET_PASSWORD is not set"],
    ),
    Case(
        "missing-secret-file",
        """
        device: {id: test}
        mqtt:
          password_file: secrets/mqtt
        """,
        ["p.yaml:3:18 mqtt.password_file: cannot read secret file 'secrets/mqtt': it does not exist"],
    ),
    Case(
        "secret-and-secret-file",
        """
        device: {id: test}
        mqtt:
          password: hunter2
          password_file: mqtt.secret
        """,
        ["p.yaml:4:18 mqtt.password_file: set either password or password_file, not both"],
        other_files={"mqtt.secret": "hunter3\n"},
    ),
    Case(
        "unknown-reference-scheme",
        """
        device: {id: test}
        mqtt:
          password: ${vault:mqtt}
        """,
        ["p.yaml:3:13 mqtt.password: unknown reference '${vault:…}'; use ${env:NAME} or ${file:PATH}"],
    ),
    Case(
        "yaml-syntax-error",
        """
        device: {id: test
        cameras: []
        """,
        ["p.yaml:2:8: YAML syntax error: expected ',' or '}', but got ':' while parsing a flow mapping"],
    ),
    Case(
        "tab-indentation",
        "device:\n\tid: test\ncameras:\n  -\tid: x\n",
        ["p.yaml:2:1: tab character in indentation; YAML indents with spaces only"],
    ),
    Case(
        "duplicate-keys",
        """
        device:
          id: test
          name: One
          name: Two
        """,
        ["p.yaml:4:3: duplicate key 'name' in the mapping that starts at line 2"],
    ),
    Case(
        "oversized-file",
        b"device: {id: test}\n" + b"# padding\n" * (MAX_PROFILE_BYTES // 10),
        [f"p.yaml: cannot read the profile: it is larger than {MAX_PROFILE_BYTES} bytes (the limit)"],
    ),
    Case("empty-file", "", ["p.yaml:1:1: profile is empty"]),
    Case(
        "list-at-top-level",
        """
        - device: {id: test}
        """,
        ["p.yaml:1:1: a profile must be a mapping of keys, got a list"],
    ),
    Case(
        "not-utf8",
        b"device: {id: test}\nname: caf\xe9\n",
        ["p.yaml:2:1: not UTF-8 text (byte 0xe9 at offset 28)"],
    ),
    Case(
        "many-errors-at-once",
        """
        device: {id: test}
        detector:
          threads: -1
        cameras:
          - id: cam1
            source: rtsp://
          - id: cam1
            source: 3.5
        areas:
          - id: hall
            cameras: []
        """,
        [
            "p.yaml:3:12 detector.threads: -1 is less than the minimum of 0",
            "p.yaml:6:13 cameras[0].source: URL 'rtsp://' has no host",
            "p.yaml:7:9 cameras[1].id: duplicate camera id 'cam1' (also cameras[0])",
            "p.yaml:8:13 cameras[1].source: expected string or integer, got number 3.5",
            "p.yaml:10:5 areas[0]: an area needs cameras, zones or entrances to count people by",
        ],
    ),
    Case(
        "notification-channels",
        """
        device: {id: test}
        cameras:
          - {id: cam1, source: /dev/video0}
        areas:
          - {id: hall, cameras: [cam1], occupancy_alert: {channels: [ops, pager]}}
        notifications:
          email:
            - {id: ops, host: smtp.example.com, sender: a@example.com, to: [b@example.com]}
          slack:
            - {id: ops, url: "hxxp://hooks.example.com/T000/B000/XXXXsecret"}
          webhooks:
            - {id: crm, url: "ftp://crm.example.com/in"}
          daily_report: {enabled: true, channels: [crm, nobody]}
        s3:
          access_key_id: AKIAEXAMPLE
          screenshots: {cameras: [cam9]}
        """,
        [
            "p.yaml:5:67 areas[0].occupancy_alert.channels[1]: unknown channel 'pager' (channels: ops, crm)",
            "p.yaml:10:12 notifications.slack[0].id: duplicate channel id 'ops' (also notifications.email[0])",
            "p.yaml:10:22 notifications.slack[0].url: the URL is not an http:// or https:// URL with a host",
            "p.yaml:12:22 notifications.webhooks[0].url: URL 'ftp://crm.example.com/in' is not an http:// or https:// URL with a host",
            "p.yaml:13:49 notifications.daily_report.channels[1]: unknown channel 'nobody' (channels: ops, crm)",
            "p.yaml:15:3 s3: set access_key_id and secret_access_key together, or neither (boto3 then finds them)",
            "p.yaml:16:27 s3.screenshots.cameras[0]: unknown camera 'cam9'",
        ],
    ),
    Case(
        "names-with-line-breaks-and-bidirectional-characters",
        """
        device: {id: test, name: "Shop \\u202efloor"}
        cameras:
          - {id: cam1, source: /dev/video0, name: "Door\\u2028INFO forged"}
        areas:
          - {id: hall, cameras: [cam1], name: "Hall\\nnext"}
        """,
        [
            "p.yaml:1:26 device.name: contains a control or bidirectional character (U+202E)",
            "p.yaml:3:43 cameras[0].name: contains a control or bidirectional character (U+2028)",
            "p.yaml:5:39 areas[0].name: contains a control or bidirectional character (U+000A)",
        ],
    ),
]


def _write_case(case: Case, write_files: WriteFiles) -> None:
    write_files(
        p__yaml=case.profile,
        **{name.replace(".", "__"): text for name, text in case.other_files.items()},
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_invalid_profile_messages(case: Case, write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    _write_case(case, write_files)
    with pytest.raises(ProfileError) as raised:
        load_profile(Path("p.yaml"))
    assert [str(issue) for issue in raised.value.issues] == case.expected


def test_there_are_at_least_25_invalid_cases() -> None:
    assert len(CASES) >= 25


def test_cli_reports_every_error_and_exits_2(write_files: WriteFiles) -> None:
    case = next(c for c in CASES if c.id == "many-errors-at-once")
    _write_case(case, write_files)
    result = run_cli("validate", "p.yaml", cwd=Path.cwd())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [*case.expected, "p.yaml: invalid (5 problems)"]


def test_cli_checks_every_file_even_after_an_invalid_one(write_files: WriteFiles) -> None:
    write_files(bad__yaml="device: {id: Bad}\n", good__yaml="device: {id: good}\n")
    result = run_cli("validate", "bad.yaml", "good.yaml", cwd=Path.cwd())
    assert result.returncode == 2
    assert "good.yaml: valid" in result.stdout
    assert "bad.yaml: invalid (1 problem)" in result.stderr
