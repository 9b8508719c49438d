"""The retained state on the broker: the device, each camera and its switch, each area, zone and
line, the last update, and Home Assistant's discovery configs. A view is published when it changed (at most
every `state_interval_s`, a change of status at once), and every view again on each new session."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from appliance.config.model import Profile
from appliance.runtime.events import (
    AreaMasks,
    AreaUpdate,
    FrameResult,
    LineUpdate,
    MaskMinute,
    UpdateStatus,
    ZoneUpdate,
)
from appliance.runtime.outputs.mqtt.delivery import Delivery
from appliance.runtime.outputs.mqtt.topics import OFF, ON, Topics, discovery_configs
from appliance.runtime.serialize import camera_state_json, device_json, to_json
from appliance.runtime.state import CameraState, RuntimeState

REFRESH_S = 1.0  # camera status and FPS are read from the runtime state this often
FPS_REPUBLISH_S = 10.0  # a camera's state is republished for its FPS alone at most this often
DEVICE_REPUBLISH_S = 60.0


class Publish(Protocol):
    """Sends retained state now if connected; the next session republishes it otherwise."""

    def __call__(self, topic: str, payload: bytes, *, retain: bool = False, qos: int | None = None) -> None: ...


@dataclass
class _CameraView:
    """A camera's state as published next, and what was published last."""

    state: CameraState
    t: float | None = None  # time of the last frame counted (video time for files)
    published: tuple[Any, ...] | None = None
    published_at: float = float("-inf")
    detections_at: float = float("-inf")

    def key(self) -> tuple[Any, ...]:
        state = self.state
        return state.status, state.reason, state.people, state.people_in_violation, state.open_episodes

    def due(self, now: float, interval: float) -> bool:
        """A change once `interval` has passed since the last publish; a change of status at
        once; the same state again after FPS_REPUBLISH_S, for its FPS."""
        if self.published is None or self.key()[:2] != self.published[:2]:
            return True
        if self.key() != self.published:
            return now - self.published_at >= interval
        return now - self.published_at >= FPS_REPUBLISH_S


@dataclass
class _CountsView:
    """An area's or a zone's latest state, its retained topic, and what was published last."""

    topic: str
    latest: AreaUpdate | ZoneUpdate
    published: tuple[Any, ...] | None = None
    published_at: float = float("-inf")

    def key(self) -> tuple[Any, ...]:
        counts = self.latest
        if isinstance(counts, ZoneUpdate):
            return counts.people, counts.people_in_violation
        return (counts.people, counts.people_in_violation, counts.over_threshold, counts.cameras_reporting,
                counts.estimated_people)  # fmt: skip

    def due(self, now: float, interval: float) -> bool:
        return self.key() != self.published and now - self.published_at >= interval


class RetainedViews:
    def __init__(
        self, profile: Profile, topics: Topics, state: RuntimeState, delivery: Delivery, publish: Publish
    ) -> None:
        self.profile = profile
        self.topics = topics
        self.state = state
        self.delivery = delivery
        self.publish = publish
        self._cameras: dict[str, _CameraView] = {}
        self._counts: dict[str, _CountsView] = {}  # by area id, or CAMERA/ZONE
        self._refreshed_at = self._device_at = float("-inf")
        self._health: tuple[tuple[str, bool], ...] = ()  # which outputs were up at the last device state

    def republish(self) -> None:
        """A new session: discovery and every retained state again."""
        self.discovery()
        self.device()
        self.switches()
        for view in self._cameras.values():
            view.published, view.published_at = None, float("-inf")
        self._counts.clear()
        self.refresh(force=True)
        snapshot = self.state.snapshot()
        for area in snapshot.areas.values():
            self.area(area)
        for zone in snapshot.zones.values():
            self.zone(zone)
        if snapshot.update is not None:
            self.update(snapshot.update)

    def change_profile(self, profile: Profile) -> None:
        """Clear the retained state of cameras and areas no longer there; the rest again."""
        before, self.profile = self.profile, profile
        for camera_id in {c.id for c in before.cameras} - {c.id for c in profile.cameras}:
            for leaf in ("state", "enabled"):
                self.publish(self.topics.camera(camera_id, leaf), b"", retain=True)
            self._cameras.pop(camera_id, None)
        for area_id in {a.id for a in before.areas} - {a.id for a in profile.areas}:
            self.publish(self.topics.area(area_id, "state"), b"", retain=True)
            self._counts.pop(area_id, None)
        for camera_id, leaf in _places(before) - _places(profile):
            self.publish(self.topics.camera(camera_id, leaf), b"", retain=True)
            self._counts.pop(f"{camera_id}/{leaf.split('/')[1]}", None)
        self.discovery()
        self.switches()
        self.refresh(force=True)

    def frame(self, event: FrameResult) -> None:
        view = self._view(event.camera_id)
        people, violating = event.people, event.people_in_violation
        view.state = replace(view.state, people=people, people_in_violation=violating, status="online", reason=None)
        view.t = event.timestamp
        if view.due(time.monotonic(), self.profile.mqtt.state_interval_s):
            self._publish_camera(event.camera_id, view)
        interval = self.profile.mqtt.detections_interval_s
        if event.tracks is not None and interval is not None and event.timestamp - view.detections_at >= interval:
            view.detections_at = event.timestamp
            payload = self.delivery.payload(to_json(event))
            self.publish(self.topics.camera(event.camera_id, "detections"), payload, qos=0)

    def refresh(self, force: bool = False) -> None:
        """Camera status and FPS from the runtime state; the device's facts now and then."""
        now = time.monotonic()
        if not force and now - self._refreshed_at < REFRESH_S:
            return
        self._refreshed_at = now
        cameras = self.state.snapshot().cameras
        for camera in self.profile.cameras:
            view = self._view(camera.id)
            known = cameras.get(camera.id)
            if not camera.enabled:
                view.state = replace(
                    view.state, status="disabled", reason=None, fps=0.0, people=0, people_in_violation=0
                )
            elif known is not None:  # status and FPS from the state; counts from the last frame seen here
                view.state = replace(
                    known, people=view.state.people, people_in_violation=view.state.people_in_violation
                )
            if view.due(now, self.profile.mqtt.state_interval_s):
                self._publish_camera(camera.id, view)
        health = tuple((o.name, o.problem is None) for o in self.state.snapshot().device.outputs if o.active)
        if now - self._device_at >= DEVICE_REPUBLISH_S or health != self._health:
            self._health = health
            self.device()

    def area(self, event: AreaUpdate) -> None:
        self._counts_changed(event.area_id, self.topics.area(event.area_id, "state"), event)

    def zone(self, event: ZoneUpdate) -> None:
        topic = self.topics.camera(event.camera_id, f"zone/{event.zone_id}/state")
        self._counts_changed(f"{event.camera_id}/{event.zone_id}", topic, event)

    def line(self, event: LineUpdate) -> None:
        """A line's counts, retained: Home Assistant's sensors of it read them."""
        crossing = event.crossing
        topic = self.topics.camera(crossing.camera_id, f"line/{crossing.line_id}/state")
        self.publish(topic, self.delivery.payload(to_json(event)), retain=True)

    def masks(self, event: MaskMinute) -> None:
        """A camera's last minute of face-mask verdicts, retained: its sensors read them."""
        self.publish(self.topics.camera(event.camera_id, "masks"), self.delivery.payload(to_json(event)), retain=True)

    def area_masks(self, event: AreaMasks) -> None:
        """An area's mask counts, retained: its sensors read them."""
        self.publish(self.topics.area(event.area_id, "masks"), self.delivery.payload(to_json(event)), retain=True)

    def flush_counts(self) -> None:
        """The areas and zones whose last change waited for their interval."""
        now = time.monotonic()
        for view in self._counts.values():
            self._publish_counts(view, now)

    def _counts_changed(self, key: str, topic: str, event: AreaUpdate | ZoneUpdate) -> None:
        view = self._counts.setdefault(key, _CountsView(topic, event))
        view.latest = event
        self._publish_counts(view, time.monotonic())

    def device(self) -> None:
        self._device_at = time.monotonic()
        body = device_json(self.state.snapshot().device, time.time())
        self.publish(self.topics.device, self.delivery.payload(body), retain=True)

    def update(self, status: UpdateStatus) -> None:
        self.publish(self.topics.update, self.delivery.payload(to_json(status)), retain=True)

    def switches(self) -> None:
        """Each camera's enabled switch, as the profile has it."""
        for camera in self.profile.cameras:
            self.switch(camera.id, camera.enabled)

    def switch(self, camera_id: str, enabled: bool) -> None:
        self.publish(self.topics.camera(camera_id, "enabled"), (ON if enabled else OFF).encode(), retain=True)

    def discovery(self) -> None:
        """Every entity's config; an empty retained config for each one no longer there."""
        if not self.profile.mqtt.discovery.enabled:
            return
        spool = self.delivery.spool
        configs = discovery_configs(self.profile, self.topics)
        for topic in spool.discovery_topics() - configs.keys():
            self.publish(topic, b"", retain=True, qos=1)
        for topic, payload in configs.items():
            self.publish(topic, payload.encode(), retain=True, qos=1)
        spool.set_discovery_topics(set(configs))

    def _view(self, camera_id: str) -> _CameraView:
        if camera_id not in self._cameras:
            self._cameras[camera_id] = _CameraView(
                CameraState(camera_id, camera_id, "starting", None, 0.0, 0, 0, 0, None)
            )
        return self._cameras[camera_id]

    def _publish_camera(self, camera_id: str, view: _CameraView) -> None:
        body = camera_state_json(view.state, view.t if view.t is not None else time.time())
        self.publish(self.topics.camera(camera_id, "state"), self.delivery.payload(body), retain=True)
        view.published, view.published_at = view.key(), time.monotonic()

    def _publish_counts(self, view: _CountsView, now: float) -> None:
        if view.due(now, self.profile.mqtt.state_interval_s):
            self.publish(view.topic, self.delivery.payload(to_json(view.latest)), retain=True)
            view.published, view.published_at = view.key(), now


def _places(profile: Profile) -> set[tuple[str, str]]:
    """The retained topics of every zone and line: (camera, leaf)."""
    return {(c.id, f"zone/{z.id}/state") for c in profile.cameras for z in c.zones} | {
        (c.id, f"line/{line.id}/state") for c in profile.cameras for line in c.lines
    }
