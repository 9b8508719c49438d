"""One JSON shape per event: every event type serializes to an object its schema accepts."""

from __future__ import annotations

import json
import typing
from dataclasses import replace

import pytest
from jsonschema import Draft202012Validator

from appliance.config.model import RawDataConfig, WebhookChannelConfig
from appliance.runtime import events
from appliance.runtime.events import (
    AreaAlert,
    AreaMasks,
    AreaUpdate,
    CameraLifecycle,
    CameraStatus,
    CameraSummary,
    ConfigChanged,
    EpisodeEvent,
    Event,
    FrameResult,
    LineUpdate,
    MaskCounts,
    MaskMinute,
    RunEvent,
    RunSummary,
    Snapshot,
    TrackRecord,
    UpdateResult,
    UpdateStatus,
    WorkerFailed,
    ZoneUpdate,
    ZoneVisitEvent,
)
from appliance.runtime.outputs.channels.base import Attachment, Message, message_id
from appliance.runtime.outputs.channels.webhook import WebhookTransport
from appliance.runtime.outputs.notifications.rawdata import RawFeed
from appliance.runtime.serialize import VERSION, camera_state_json, command_error_json, device_json, to_json
from appliance.runtime.state import CameraState, DeviceState
from appliance.runtime.types import Crossing, LineCounts, ViolationEpisode, ZoneVisit
from tests.conftest import REPO

SCHEMAS = REPO / "schemas" / "events"
EPISODE = ViolationEpisode("cam", (3, 4), 10.0, None, 92.46)
EXAMPLES: list[Event] = [
    FrameResult("cam", 7, 0.7, 2, 0, {"detect": 0.01}),
    FrameResult("cam", 8, 0.8, 1, 0, {}, (TrackRecord(3, (1.04, 2.0, 30.0, 90.0), 0.91234),)),
    CameraStatus("cam", True, None, 120, 3, 1, progress=(120, 795), skipped=480),
    CameraStatus("cam", False, "rtsp://admin:***@10.0.0.5/s: stream ended", 0, 0, 0),
    EpisodeEvent(EPISODE, "started"),
    EpisodeEvent(ViolationEpisode("cam", (3, 4), 10.0, 31.5, 92.46), "ended"),
    WorkerFailed("cam", "model file /m.onnx does not exist"),
    Snapshot("cam", 12.5, b"\xff\xd8 jpeg", 768, 576),
    CameraLifecycle("worker_restarting", "cam", "worker exited with code -9"),
    CameraLifecycle("worker_started", "cam"),
    AreaUpdate("hall", 12.0, 5, 2, 2, 4, True, 0.6),
    AreaUpdate("shop", 12.0, 3, 0, 1, 40, True, 1.0, estimated_people=41),
    ZoneUpdate("cam", "queue", 12.0, 2, 1, (31.25, 4.5)),
    ZoneVisitEvent(ZoneVisit("cam", "queue", 3, 10.0, 45.5), "ended", 45.5),
    ZoneVisitEvent(ZoneVisit("cam", "queue", 4, 10.0, None), "loitering", 130.0),
    MaskMinute("cam", 120.0, MaskCounts(3, 1, 2), (("queue", MaskCounts(1, 0, 0)),)),
    AreaMasks("hall", 120.0, MaskCounts(4, 1, 2)),
    LineUpdate(
        Crossing("cam", "door", 5, "in", 1.7e9), LineCounts("2023-11-14", "2023-11-14T23:00:00+01:00", 12, 9, 3, 1)
    ),
    AreaAlert("hall", "violation", 12.0, 5, 2, "2 people in violation for 5 s or more"),
    AreaAlert("hall", "unmasked", 120.0, 9, 0, "4 of 10 people judged in a minute unmasked (40 %, over 20 %)"),
    ConfigChanged("applied", 3, "reload", ("cam",), (), ("old",)),
    ConfigChanged("rejected", 3, "file", errors=("p.yaml:3:5 cameras[0].sauce: unknown key 'sauce'",)),
    UpdateStatus(7, "site-8.bundle"),
    RunEvent("started", "0123456789ab", "/media/vtest.avi"),
    RunEvent(
        "ended",
        "0123456789ab",
        None,
        RunSummary((CameraSummary("cam", 795, 80.0, 8, 5.2, 6, 2.1, 11),), {"hall": 2}, "/var/lib/appliance/events"),
    ),
    UpdateStatus(
        7,
        None,
        UpdateResult(
            "site-8.bundle",
            "rolled_back",
            1.7e9,
            8,
            "model",
            "unhealthy",
            "camera lobby saw people before the update and nobody in the 60 s after it",
        ),
    ),
]


def schema_for(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_matches_its_schema(event: Event) -> None:
    body = to_json(event)
    assert body["v"] == VERSION and isinstance(body["t"], float)
    errors = [error.message for error in schema_for(body["type"]).iter_errors(body)]
    assert not errors, (body, errors)
    json.dumps(body, allow_nan=False)


CAMERA = CameraState("cam", "Lobby", "offline", "rtsp://10.0.0.5/s: stream ended", 0.0, 0, 0, 120, None)
DEVICE = DeviceState("dev", "Device", "site", "0.1.0", 2, 1.7e9, None, ())
STATES = [  # MQTT's retained states and errors, which are no events
    camera_state_json(CAMERA, 12.5),
    camera_state_json(replace(CAMERA, status="disabled", reason=None), 12.5),
    device_json(DEVICE, 1.7e9 + 60),
    command_error_json("appliance/dev/camera/x\x00/enabled/set", "no camera 'x\x00' in the profile", 1.7e9),
]


@pytest.mark.parametrize("body", STATES, ids=lambda body: str(body["type"]))
def test_every_state_matches_its_schema(body: dict[str, object]) -> None:
    errors = [error.message for error in schema_for(str(body["type"])).iter_errors({**body, "seq": 1})]
    assert not errors, (body, errors)
    json.dumps(body, allow_nan=False)


def test_every_event_class_and_every_schema_is_covered() -> None:
    """Every event but a worker's bare crossing, which leaves as the LineUpdate the state makes of it."""
    classes = set(typing.get_args(events.Event))
    assert {type(example) for example in EXAMPLES} == classes - {Crossing}
    with pytest.raises(TypeError):
        to_json(Crossing("cam", "door", 5, "in", 1.7e9))
    used = {to_json(example)["type"] for example in EXAMPLES} | {body["type"] for body in STATES}
    used |= {body["type"] for body in webhook_bodies()}
    assert used == {path.name.removesuffix(".schema.json") for path in SCHEMAS.glob("*.schema.json")}


def webhook_bodies() -> list[dict[str, typing.Any]]:
    """What a webhook channel receives: a notification (an alert with a snapshot) and a raw-data batch."""
    config = WebhookChannelConfig(id="crm", url="http://127.0.0.1:9/hook", ca_file=None, timeout_s=5,
                                  raw_data=RawDataConfig(enabled=True, interval_s=1, format="appliance"))  # fmt: skip
    alert = next(e for e in EXAMPLES if isinstance(e, events.AreaAlert))
    message = Message(message_id(), "alert", "Occupancy", "Nine people.", to_json(alert), 1.7e9,
                      (Attachment("cam.jpg", "image/jpeg", b"\xff\xd8"),))  # fmt: skip
    feed = RawFeed(config.raw_data, "dev", 0.0)
    for example in EXAMPLES:
        feed.take(example)
    [batch] = feed.flush(2.0)
    return [WebhookTransport(config, "dev").notification(message), batch.body]


@pytest.mark.parametrize("body", webhook_bodies(), ids=lambda body: str(body["type"]))
def test_webhook_bodies_match_their_schemas(body: dict[str, typing.Any]) -> None:
    assert not list(schema_for(body["type"]).iter_errors(body))
    for event in body.get("events", []):
        assert not list(schema_for(event["type"]).iter_errors(event))
    assert body["type"] != "batch" or {e["type"] for e in body["events"]} == {"detections", "episode", "crossing",
                                                                             "zone_visit"}  # fmt: skip


def test_numbers_are_rounded_to_what_is_meaningful() -> None:
    detections = to_json(EXAMPLES[1])
    assert detections["people"] == [{"id": 3, "box": [1.0, 2.0, 30.0, 90.0], "score": 0.912, "violation": False}]
    ended = to_json(EXAMPLES[5])
    assert ended["duration_s"] == 21.5 and ended["min_distance_cm"] == 92.5 and ended["t"] == 31.5
