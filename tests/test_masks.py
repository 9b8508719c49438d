"""Face masks: verdicts on the known photo, no verdict for small faces, per-minute counts of people."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import jsonschema
import pytest
from jinja2.sandbox import SandboxedEnvironment

from appliance.config import load_profile
from appliance.config.model import AreaConfig, MasksConfig
from appliance.runtime.analysis.alerts import AreaAlerts
from appliance.runtime.events import AreaMasks, MaskCounts, MaskMinute
from appliance.runtime.faces import FaceDetector, RfbMaskedFaceDetector, create_face_detector
from appliance.runtime.faces.masks import MaskJudge, MaskMinutes, PersonVerdict, image_verdicts
from appliance.runtime.outputs.mqtt.topics import Topics, discovery_configs
from appliance.runtime.outputs.notifications.compose import alert_message
from appliance.runtime.serialize import to_json
from appliance.runtime.state import RuntimeState, area_masks
from appliance.runtime.types import Image, Track
from appliance.runtime.worker import _mask_judge
from tests.conftest import PROFILES, REPO, run_cli

MASK_MODEL = "models/faces/RFB-640-masked_face-v2.onnx"


def masks_on(data: Path, **changes: float) -> MasksConfig:
    profile = load_profile(PROFILES / "x86.yaml").profile
    model = replace(profile.masks.model, path=str(data / MASK_MODEL))
    return replace(profile.masks, enabled=True, model=model, **changes)


def test_the_portrait_photo_gets_masked_where_masks_are_worn(data: Path) -> None:
    """img4.jpeg: 4 rows of 8 portraits, columns 1, 3, 5, 7 masked. Loose bounds, but a model
    or a decoder that swapped the labels fails every one of them."""
    config = masks_on(data)
    detector = create_face_detector(config.model, config.min_score, key="masks.model")
    image = cv2.imread(str(data / "stills/masked/img4.jpeg"))
    width = image.shape[1]
    by_column: dict[str, list[str]] = {"masked": [], "bare": []}
    for face, verdict in image_verdicts(detector, image, config.min_face_px):
        column = int((face.box[0] + face.box[2]) / 2 * 8 // width)
        by_column["masked" if column % 2 == 0 else "bare"].append(verdict)
    assert by_column["masked"].count("masked") >= 12 and by_column["masked"].count("unmasked") <= 3
    assert by_column["bare"].count("unmasked") >= 12 and by_column["bare"].count("masked") <= 3


class NeverCalled(FaceDetector):
    architecture = "never"
    tells_masks = True

    def detect(self, image: Image) -> list[object]:  # type: ignore[override]
        raise AssertionError("a head this small is never looked at")


def test_a_head_too_small_gets_no_verdict_and_costs_no_model_run(data: Path) -> None:
    config = masks_on(data, min_face_px=24, interval_s=1.0)
    judge = MaskJudge(config, NeverCalled(Path("none"), 0.5))
    small = Track(1, (100, 100, 130, 290), 0.9, 10)  # 190 px tall: a face of about 24 px at most
    image = cv2.imread(str(data / "stills/bus.jpg"))
    assert judge.judge(image, 0.0, [small]) == [PersonVerdict(1, "too_small")]
    assert judge.judge(image, 0.5, [small]) == []  # looked at once per interval_s


def test_every_face_of_pets09_is_too_small_to_tell(data: Path) -> None:
    """PETS09-S2L1's faces are 5-10 px: whatever the judge sees there, it never says unmasked."""
    config = masks_on(data)
    judge = MaskJudge(config, RfbMaskedFaceDetector(data / MASK_MODEL, config.min_score))
    capture = cv2.VideoCapture(str(data / "sequences/PETS09-S2L1/vtest.avi"))
    ok, image = capture.read()
    tall = Track(1, (300, 50, 380, 300), 0.9, 10)  # the tallest person a box there could be
    assert ok and {v.verdict for v in judge.judge(image, 0.0, [tall])} <= {"too_small"}


def test_a_person_is_counted_once_a_minute_by_their_most_frequent_verdict() -> None:
    minutes = MaskMinutes("lobby")
    seen = [(0.0, 1, "masked"), (10.0, 1, "unmasked"), (20.0, 1, "masked"), (30.0, 2, "too_small")]
    for timestamp, track_id, verdict in seen:
        assert minutes.add(timestamp, [PersonVerdict(track_id, verdict)], {1: frozenset({"door"})}) is None  # type: ignore[arg-type]
    ended = minutes.add(61.0, [PersonVerdict(1, "unmasked")], {})
    assert ended == MaskMinute("lobby", 0.0, MaskCounts(masked=1, too_small=1), (("door", MaskCounts(masked=1)),))
    assert minutes.add(125.0, [], {}) == MaskMinute("lobby", 60.0, MaskCounts(unmasked=1))
    assert minutes.finish() == MaskMinute("lobby", 120.0, MaskCounts())  # a minute with nobody seen counts too
    assert minutes.finish() is None


def test_the_masks_event_has_its_documented_shape() -> None:
    event = MaskMinute("lobby", 120.0, MaskCounts(3, 1, 2), (("door", MaskCounts(1, 0, 0)),))
    schema = json.loads((REPO / "schemas/events/masks.schema.json").read_text())
    body = to_json(event)
    jsonschema.validate(body, schema)
    assert body["t"] == 180.0 and body["zones"] == {"door": {"masked": 1, "unmasked": 0, "too_small": 0}}


def test_an_area_adds_up_its_cameras_and_zones_last_minutes() -> None:
    lobby = MaskMinute("lobby", 60.0, MaskCounts(2, 1, 0), (("door", MaskCounts(1, 0, 0)),))
    yard = MaskMinute("yard", 60.0, MaskCounts(0, 3, 4))
    areas = [
        AreaConfig(id="site", cameras=("lobby", "yard"), zones=(), entrances=(), occupancy_reset_at="00:00",
                   occupancy_threshold=None, occupancy_alert=None, violation_alert=None),  # type: ignore[arg-type]
        AreaConfig(id="entry", cameras=(), zones=("lobby/door", "yard/gate"), entrances=(), occupancy_reset_at="00:00",
                   occupancy_threshold=None, occupancy_alert=None, violation_alert=None),  # type: ignore[arg-type]
        AreaConfig(id="far", cameras=("roof",), zones=(), entrances=(), occupancy_reset_at="00:00",
                   occupancy_threshold=None, occupancy_alert=None, violation_alert=None),  # type: ignore[arg-type]
    ]  # fmt: skip
    totals = area_masks(areas, {"lobby": lobby, "yard": yard})
    assert totals == {"site": MaskCounts(2, 4, 4), "entry": MaskCounts(1, 0, 0)}


def test_the_state_keeps_each_cameras_last_minute_for_the_api_and_counts_its_areas() -> None:
    """x86.yaml's area 'hall' is its cameras lobby and entrance; a minute of a camera the profile
    does not have is not shown."""
    state = RuntimeState(load_profile(PROFILES / "x86.yaml"))
    state.handle(MaskMinute("lobby", 0.0, MaskCounts(1, 1, 1)))
    state.handle(MaskMinute("lobby", 60.0, MaskCounts(2, 0, 5)))
    state.handle(MaskMinute("gone", 60.0, MaskCounts(9, 9, 9)))
    snapshot = state.snapshot()
    assert set(snapshot.masks) == {"lobby"} and snapshot.masks["lobby"].start == 60.0
    area = load_profile(PROFILES / "x86.yaml").profile.areas[0]
    assert snapshot.area_masks == {area.id: MaskCounts(2, 0, 5)}


def test_an_area_alerts_on_a_minute_with_too_many_unmasked_people_once_per_cooldown() -> None:
    loaded = load_profile(PROFILES / "x86.yaml")
    area = loaded.profile.areas[0]
    rule = replace(area.mask_alert, enabled=True, max_unmasked_share=0.2, min_people=5, cooldown_s=600)
    alerts = AreaAlerts(replace(area, mask_alert=rule))
    assert alerts.masks(MaskCounts(masked=1, unmasked=3, too_small=9), 60.0, None) == []  # 4 judged: too few
    assert alerts.masks(MaskCounts(masked=8, unmasked=2), 120.0, None) == []  # 20 %: not over
    raised = alerts.masks(MaskCounts(masked=6, unmasked=4, too_small=3), 180.0, None)
    assert [a.kind for a in raised] == ["unmasked"] and "4 of 10" in raised[0].detail
    assert alerts.masks(MaskCounts(masked=0, unmasked=9), 600.0, None) == []  # cooling down
    assert len(alerts.masks(MaskCounts(masked=0, unmasked=9), 780.0, None)) == 1
    message = alert_message(raised[0], replace(loaded.profile, areas=(alerts.area,)), 200.0)
    assert message.subject.endswith("People without masks: Ground floor") and "4 of 10" in message.text


def test_the_state_raises_the_mask_alert_of_the_areas_a_camera_belongs_to() -> None:
    loaded = load_profile(PROFILES / "x86.yaml")
    area = loaded.profile.areas[0]
    rule = replace(area.mask_alert, enabled=True, min_people=2)
    state = RuntimeState(replace(loaded, profile=replace(loaded.profile, areas=(replace(area, mask_alert=rule),))))
    raised = state.handle(MaskMinute("lobby", 0.0, MaskCounts(masked=1, unmasked=2)))
    assert raised[0] == AreaMasks(area.id, 0.0, MaskCounts(masked=1, unmasked=2))
    assert [(a.area_id, a.kind, a.timestamp) for a in raised[1:]] == [(area.id, "unmasked", 60.0)]  # type: ignore[union-attr]


def test_home_assistant_reads_each_camera_and_area_minute_from_its_topic(data: Path) -> None:
    """With masks on, each camera and area has three sensors whose templates turn the payloads
    published on their topics (camera/<id>/masks, area/<id>/masks) into numbers."""
    loaded = load_profile(PROFILES / "x86.yaml")
    profile = replace(loaded.profile, masks=masks_on(data))
    topics = Topics.for_profile(profile)
    configs = [json.loads(c) for c in discovery_configs(profile, topics).values()]
    payloads = {
        topics.camera("lobby", "masks"): to_json(MaskMinute("lobby", 60.0, MaskCounts(3, 1, 2))),
        topics.area(profile.areas[0].id, "masks"): to_json(AreaMasks(profile.areas[0].id, 60.0, MaskCounts(3, 1, 2))),
    }
    masks = [c for c in configs if c.get("state_topic", "").endswith("/masks")]
    assert len(masks) == 3 * (len(profile.cameras) + len(profile.areas))
    for config in masks:
        if config["state_topic"] in payloads:
            value = (
                SandboxedEnvironment()
                .from_string(config["value_template"])
                .render(value_json=payloads[config["state_topic"]])
            )
            assert value in {"3", "1", "2"}, config
    off = [json.loads(c) for c in discovery_configs(loaded.profile, topics).values()]
    assert not any(c.get("state_topic", "").endswith("/masks") for c in off)


def test_the_stage_off_loads_no_model() -> None:
    profile = load_profile(PROFILES / "x86.yaml").profile
    assert not profile.masks.enabled and _mask_judge(profile.masks) is None


@pytest.fixture
def masks_profile(data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "masks.yaml"
    path.write_text(
        f"extends: {PROFILES / 'x86.yaml'}\nstorage: {{data_dir: {tmp_path / 'data'}}}\n"
        "metrics: {enabled: false}\napi: {enabled: false}\nmqtt: {enabled: false}\n"
        "areas: []\n"
        f"cameras:\n  - {{id: street, source: {data / 'sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4'}}}\n"
        f"masks: {{enabled: true, model: {{path: {data / MASK_MODEL}}}, min_face_px: 16}}\n"
    )
    return path


def test_a_run_writes_each_minute_of_mask_verdicts_to_the_event_log(masks_profile: Path, tmp_path: Path) -> None:
    """TUD-Stadtmitte (2009: nobody wears a mask) as a historical run: its minute of verdicts is
    in the event log, in its documented shape, with people looked at."""
    video = masks_profile.read_text().split("source: ")[1].split("}")[0]
    result = run_cli("run", "--profile", str(masks_profile), "--input", video, "--start", "2026-12-01T10:00:00+01:00")
    assert result.returncode == 0, result.stderr[-2000:]
    schema = json.loads((REPO / "schemas/events/masks.schema.json").read_text())
    records = [json.loads(line) for log in (tmp_path / "data" / "events").glob("*/*.jsonl")
               for line in log.read_text().splitlines() if '"masks"' in line]  # fmt: skip
    minutes = [r for r in records if r["type"] == "masks"]
    assert minutes, result.stderr[-2000:]
    for minute in minutes:
        jsonschema.validate(minute, schema)
    looked_at = sum(m["masked"] + m["unmasked"] + m["too_small"] for m in minutes)
    assert looked_at >= 3 and sum(m["unmasked"] for m in minutes) >= sum(m["masked"] for m in minutes)


def test_profile_key_masks_needs_its_model(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("device: {id: test}\nmasks: {enabled: true}\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 2 and "masks.model.path: masks are enabled: name the face detector's model file" in (
        result.stderr + result.stdout
    )


def test_a_profile_may_not_ask_a_mask_stage_of_a_face_only_model(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("device: {id: test}\nmasks: {enabled: true, model: {path: m.onnx, architecture: yunet}}\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 2 and "masks.model.architecture" in result.stderr + result.stdout
