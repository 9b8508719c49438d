"""Where the appliance publishes, and Home Assistant's discovery configs for it. Pure functions of
the profile; docs/mqtt.md lists every topic with an example payload."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance import __version__
from appliance.config.model import Profile
from appliance.runtime.events import ALERT_KINDS

ON, OFF = "ON", "OFF"
RELEASE_SUMMARY_CHARS = 255  # Home Assistant's limit
# Home Assistant's update entity reads its own JSON; this renders it from the `update` event.
UPDATE_TEMPLATE = (
    "{% set last = value_json.last_result %}"
    "{% set version = value_json.installed_version | string %}"
    "{{ {'installed_version': version, 'latest_version': version,"
    " 'in_progress': value_json.in_progress is not none,"
    " 'title': 'Configuration and models',"
    " 'release_summary': ((last.outcome | replace('_', ' ')) ~ ': ' ~ last.bundle"
    " ~ (' (' ~ last.reason ~ ')' if last.reason else '') ~ (': ' ~ last.message if last.message else ''))"
    f"[:{RELEASE_SUMMARY_CHARS}] if last else 'No update bundle processed yet'}} | tojson }}}}"
)


@dataclass(frozen=True)
class Topics:
    """Every topic under `<topic_prefix>/<device id>/`."""

    base: str

    @classmethod
    def for_profile(cls, profile: Profile) -> Topics:
        return cls(f"{profile.mqtt.topic_prefix.rstrip('/')}/{profile.device.id}")

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def device(self) -> str:
        return f"{self.base}/device"

    @property
    def config(self) -> str:
        return f"{self.base}/config"

    @property
    def update(self) -> str:
        return f"{self.base}/update"

    @property
    def error(self) -> str:
        return f"{self.base}/error"

    @property
    def commands(self) -> tuple[str, ...]:
        """Subscriptions that take every `.../set` topic (known or not, to answer the unknown)."""
        return (f"{self.base}/set", f"{self.base}/+/set", f"{self.base}/+/+/set", f"{self.base}/+/+/+/set")

    def camera(self, camera_id: str, leaf: str) -> str:
        """`state`, `episode`, `detections`, `enabled`, `enabled/set`, `snapshot`, `snapshot/set`,
        `line/<id>/crossing`, `zone/<id>/visit`."""
        return f"{self.base}/camera/{camera_id}/{leaf}"

    def area(self, area_id: str, leaf: str) -> str:
        """`state`, `alert`."""
        return f"{self.base}/area/{area_id}/{leaf}"


EVENT_TEMPLATE = '{"event_type": "{{ value_json.%s }}"}'  # Home Assistant event entities want this shape


def discovery_configs(profile: Profile, topics: Topics) -> dict[str, str]:
    """Home Assistant discovery: config topic -> JSON payload. The appliance is one device; each
    camera is a device linked to it through `via_device`; areas are the appliance's entities."""
    prefix = profile.mqtt.discovery.prefix.rstrip("/")
    device_id = profile.device.id
    appliance = {
        "identifiers": [f"appliance_{device_id}"],
        "name": profile.device.display_name,
        "manufacturer": "Social distancing appliance",
        "model": profile.device.hardware,
        "sw_version": __version__,
    }
    configs: dict[str, str] = {}

    def add(component: str, object_id: str, payload: dict[str, Any]) -> None:
        unique_id = f"{device_id}_{object_id}"
        body = {"unique_id": unique_id, "object_id": unique_id, "availability_topic": topics.availability, **payload}
        configs[f"{prefix}/{component}/{device_id}/{object_id}/config"] = json.dumps(body, separators=(",", ":"))

    for camera in profile.cameras:
        state = topics.camera(camera.id, "state")
        device = {
            "identifiers": [f"appliance_{device_id}_{camera.id}"],
            "name": camera.name or camera.id,
            "via_device": f"appliance_{device_id}",
        }
        people = {"state_topic": state, "state_class": "measurement", "unit_of_measurement": "people", "device": device}
        key = camera.id
        add("sensor", f"{key}_people", {**people, "name": "People", "value_template": "{{ value_json.people }}"})
        add("sensor", f"{key}_people_in_violation", {**people, "name": "People in violation",
            "value_template": "{{ value_json.people_in_violation }}"})  # fmt: skip
        add("sensor", f"{key}_fps", {"name": "Frames per second", "state_topic": state, "state_class": "measurement",
            "unit_of_measurement": "fps", "value_template": "{{ value_json.fps }}", "device": device,
            "entity_category": "diagnostic"})  # fmt: skip
        add("binary_sensor", f"{key}_violation", {"name": "Violation", "state_topic": state, "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.violation else 'OFF' }}", "device": device})  # fmt: skip
        add("binary_sensor", f"{key}_online", {"name": "Online", "state_topic": state, "device_class": "connectivity",
            "value_template": "{{ 'ON' if value_json.status == 'online' else 'OFF' }}", "device": device,
            "entity_category": "diagnostic"})  # fmt: skip
        add("switch", f"{key}_enabled", {"name": "Enabled", "state_topic": topics.camera(camera.id, "enabled"),
            "command_topic": topics.camera(camera.id, "enabled/set"), "payload_on": ON, "payload_off": OFF,
            "device": device, "entity_category": "config"})  # fmt: skip
        add("event", f"{key}_episode", {"name": "Violation episode", "device": device,
            "state_topic": topics.camera(camera.id, "episode"), "event_types": ["started", "ended"],
            "value_template": EVENT_TEMPLATE % "state"})  # fmt: skip
        add("image", f"{key}_snapshot", {"name": "Snapshot", "image_topic": topics.camera(camera.id, "snapshot"),
            "content_type": "image/jpeg", "device": device})  # fmt: skip
        add("button", f"{key}_take_snapshot", {"name": "Take snapshot", "device": device,
            "command_topic": topics.camera(camera.id, "snapshot/set"), "payload_press": "PRESS"})  # fmt: skip
        if profile.masks.enabled:
            _mask_entities(add, topics.camera(camera.id, "masks"), camera.id, "", device)
        for zone in camera.zones:
            _zone_entities(add, topics, camera.id, zone.id, zone.name or zone.id, device)
        for line in camera.lines:
            _line_entities(add, topics, camera.id, line.id, line.name or line.id, device)
    if profile.ota.active:
        add("update", "update", {"name": "Update", "state_topic": topics.update, "value_template": UPDATE_TEMPLATE,
            "device_class": "firmware", "entity_category": "diagnostic", "device": appliance})  # fmt: skip
    for area in profile.areas:
        state = topics.area(area.id, "state")
        name = area.name or area.id
        counts = {"state_topic": state, "state_class": "measurement", "unit_of_measurement": "people",
                  "device": appliance}  # fmt: skip
        add("sensor", f"area_{area.id}_occupancy", {**counts, "name": f"{name} occupancy",
            "value_template": "{{ value_json.people }}"})  # fmt: skip
        add("sensor", f"area_{area.id}_people_in_violation", {**counts, "name": f"{name} people in violation",
            "value_template": "{{ value_json.people_in_violation }}"})  # fmt: skip
        add("event", f"area_{area.id}_alert", {"name": f"{name} alert", "device": appliance,
            "state_topic": topics.area(area.id, "alert"), "event_types": list(ALERT_KINDS),
            "value_template": EVENT_TEMPLATE % "kind"})  # fmt: skip
        add("binary_sensor", f"area_{area.id}_over_threshold", {"name": f"{name} over threshold",
            "state_topic": state, "device_class": "occupancy", "device": appliance,
            "value_template": "{{ 'ON' if value_json.over_threshold else 'OFF' }}"})  # fmt: skip
        if profile.masks.enabled:
            _mask_entities(add, topics.area(area.id, "masks"), f"area_{area.id}", f"{name} ", appliance)
        if area.entrances:
            add("sensor", f"area_{area.id}_estimated_occupancy", {**counts, "name": f"{name} estimated occupancy",
                "value_template": "{{ value_json.estimated_people }}"})  # fmt: skip
    return configs


Add = Callable[[str, str, dict[str, Any]], None]


def _mask_entities(add: Add, state: str, key: str, prefix: str, device: dict[str, Any]) -> None:
    """The last minute's face-mask verdicts: people masked, unmasked and too small to tell."""
    for verdict, name in (("masked", "masked"), ("unmasked", "unmasked"), ("too_small", "faces too small")):
        label = f"{prefix}{name}" if prefix else name.capitalize()
        add("sensor", f"{key}_{verdict}", {"name": f"{label} (last minute)", "device": device,
            "state_topic": state, "state_class": "measurement",
            "unit_of_measurement": "people", "value_template": f"{{{{ value_json.{verdict} }}}}"})  # fmt: skip


def _zone_entities(add: Add, topics: Topics, camera_id: str, zone_id: str, name: str, device: dict[str, Any]) -> None:
    state = topics.camera(camera_id, f"zone/{zone_id}/state")
    key = f"{camera_id}_zone_{zone_id}"
    add("sensor", f"{key}_people", {"name": f"{name} people", "state_topic": state, "state_class": "measurement",
        "unit_of_measurement": "people", "value_template": "{{ value_json.people }}", "device": device})  # fmt: skip
    add("event", f"{key}_visit", {"name": f"{name} visit", "device": device, "event_types": ["ended", "loitering"],
        "state_topic": topics.camera(camera_id, f"zone/{zone_id}/visit"),
        "value_template": EVENT_TEMPLATE % "state"})  # fmt: skip


def _line_entities(add: Add, topics: Topics, camera_id: str, line_id: str, name: str, device: dict[str, Any]) -> None:
    state = topics.camera(camera_id, f"line/{line_id}/state")
    key = f"{camera_id}_line_{line_id}"
    for direction in ("in", "out"):
        add("sensor", f"{key}_{direction}_today", {"name": f"{name} {direction} today", "state_topic": state,
            "state_class": "total_increasing", "unit_of_measurement": "people", "device": device,
            "value_template": f"{{{{ value_json.{direction}_today }}}}"})  # fmt: skip
    add("event", f"{key}_crossing", {"name": f"{name} crossing", "device": device, "event_types": ["in", "out"],
        "state_topic": topics.camera(camera_id, f"line/{line_id}/crossing"),
        "value_template": EVENT_TEMPLATE % "direction"})  # fmt: skip
