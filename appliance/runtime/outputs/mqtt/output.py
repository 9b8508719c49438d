"""The MQTT output: the appliance's state and events on a broker, Home Assistant discovery, and
commands in (a camera enabled or disabled through the profile-change path).

It runs on its output thread like every output, and never waits for the broker: retained state
is published when connected and republished whole on each connection; events (violation episodes,
alerts, profile changes, command errors) go through the on-disk spool and leave it when the
broker acknowledges them, oldest first. docs/mqtt.md has every topic and payload."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from paho.mqtt.client import MQTT_ERR_SUCCESS
from ruamel.yaml.comments import CommentedMap

from appliance.config import LoadedProfile
from appliance.config.model import MqttConfig
from appliance.config.secrets import REDACTOR
from appliance.runtime.changes import ChangeOutcome, ProfileChanges
from appliance.runtime.events import (
    AreaAlert,
    AreaUpdate,
    CameraLifecycle,
    CameraStatus,
    ConfigChanged,
    EpisodeEvent,
    Event,
    FrameResult,
    Snapshot,
    UpdateStatus,
    WorkerFailed,
)
from appliance.runtime.outputs.base import Output
from appliance.runtime.outputs.mqtt.connection import (
    MAX_INFLIGHT,
    Acknowledged,
    Connected,
    Connection,
    Disconnected,
    Notice,
    Received,
)
from appliance.runtime.outputs.mqtt.ratelimit import TokenBucket
from appliance.runtime.outputs.mqtt.spool import Spool, SpoolLimits
from appliance.runtime.outputs.mqtt.topics import OFF, ON, Topics, discovery_configs
from appliance.runtime.serialize import Json, camera_state_json, command_error_json, device_json, to_json
from appliance.runtime.state import CameraState, RuntimeState

log = logging.getLogger(__name__)
MAX_COMMAND_BYTES = 256
REFRESH_S = 1.0  # camera status and FPS are read from the runtime state this often
FPS_REPUBLISH_S = 10.0  # a camera's state is republished for its FPS alone at most this often
DEVICE_REPUBLISH_S = 60.0
STOP_TIMEOUT_S = 2.0
IDLE_AFTER_S = 0.5
DRAIN_WAIT_S = 0.05  # while the spool drains, idle() waits this long for the broker's answers
COMMAND_BURST, COMMANDS_PER_S = 10, 1.0  # commands taken at once, then on average
COMMAND_REPORT_S = 60.0
ENABLE_WORDS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


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
class _AreaView:
    """An area's latest state, and what was published last."""

    latest: AreaUpdate
    published: tuple[Any, ...] | None = None
    published_at: float = float("-inf")

    def key(self) -> tuple[Any, ...]:
        area = self.latest
        return area.people, area.people_in_violation, area.over_threshold, area.cameras_reporting

    def due(self, now: float, interval: float) -> bool:
        return self.key() != self.published and now - self.published_at >= interval


class MqttOutput(Output):
    name = "mqtt"

    def __init__(
        self,
        loaded: LoadedProfile,
        state: RuntimeState,
        changes: ProfileChanges,
        request_snapshot: Callable[[str], bool] = lambda _: False,
    ) -> None:
        """`request_snapshot(camera_id)` asks a running camera for a snapshot of its next frame."""
        self.loaded = loaded
        self.state = state
        self.changes = changes
        self.request_snapshot = request_snapshot
        self.topics = Topics.for_profile(loaded.profile)
        self.connection: Connection | None = None
        self.spool: Spool | None = None
        self.active = False
        self._cameras: dict[str, _CameraView] = {}
        self._areas: dict[str, _AreaView] = {}
        self._inflight: dict[int, int] = {}  # paho message id -> spool row
        self._delivered: list[int] = []  # spool rows the broker acknowledged, to remove
        self._snapshots_asked: set[str] = set()  # cameras whose next snapshot this output asked for
        self._last_sent_row = 0
        self._outcomes: queue.SimpleQueue[tuple[str, bool, Future[ChangeOutcome]]] = queue.SimpleQueue()
        self._refreshed_at = self._device_at = float("-inf")
        self._commands = TokenBucket(burst=COMMAND_BURST, per_second=COMMANDS_PER_S)
        self._unspooled = self._lost_unspooled = 0  # events the spool could not keep: now, before
        self._commands_reported_at = 0.0

    @property
    def config(self) -> MqttConfig:
        return self.loaded.profile.mqtt

    def start(self) -> None:
        if self.config.enabled:
            self._open()

    def handle(self, event: Event) -> None:
        if self.connection is None:
            return
        self._service()
        match event:
            case FrameResult():
                self._frame(event)
            case CameraStatus() | CameraLifecycle() | WorkerFailed():
                self._refresh(force=True)
            case EpisodeEvent():
                self._queue(self.topics.camera(event.episode.camera_id, "episode"), to_json(event))
                self._refresh(force=True)  # the camera's violation sensor follows open episodes
            case Snapshot() if event.camera_id in self._snapshots_asked:  # not the API's live views
                self._snapshots_asked.discard(event.camera_id)
                self._publish(self.topics.camera(event.camera_id, "snapshot"), event.jpeg, retain=True)
            case AreaUpdate():
                self._area(event)
            case AreaAlert():
                self._queue(self.topics.area(event.area_id, "alert"), to_json(event))
            case ConfigChanged():
                self._queue(self.topics.config, to_json(event))
                self._publish_device()
            case UpdateStatus():
                self._publish_update(event)

    def idle(self) -> None:
        """Housekeeping; while the spool drains, also wait a moment for the broker's answers."""
        if self.connection is None:
            return
        if self.idle_after_s == 0:
            with contextlib.suppress(queue.Empty):
                self._take(self.connection.notices.get(timeout=DRAIN_WAIT_S))
        self._service()

    def reconfigure(self, loaded: LoadedProfile) -> None:
        old, self.loaded = self.loaded, loaded
        profile, before = loaded.profile, old.profile
        reconnect = (profile.mqtt, profile.device, profile.storage.data_dir) != (
            before.mqtt, before.device, before.storage.data_dir)  # fmt: skip
        if reconnect:
            self._close_connection()
            if self.config.enabled:
                self._open()
            return
        if self.connection is not None and self.connection.connected:
            gone = {c.id for c in before.cameras} - {c.id for c in profile.cameras}
            for camera_id in gone:
                for leaf in ("state", "enabled"):
                    self._publish(self.topics.camera(camera_id, leaf), b"", retain=True)
                self._cameras.pop(camera_id, None)
            for area_id in {a.id for a in before.areas} - {a.id for a in profile.areas}:
                self._publish(self.topics.area(area_id, "state"), b"", retain=True)
                self._areas.pop(area_id, None)
            self._publish_discovery()
            self._publish_enabled()
            self._refresh(force=True)

    def close(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.connection is not None and self._inflight and time.monotonic() < deadline:
            time.sleep(0.05)  # let the broker acknowledge what it has, so it is not sent twice
            self._service()
        self._close_connection()

    # The connection and the spool.

    def _open(self) -> None:
        profile, config = self.loaded.profile, self.config
        self.topics = Topics.for_profile(profile)
        limits = SpoolLimits(config.spool.max_messages, config.spool.max_bytes, config.spool.max_age_s)
        self.spool = Spool(Path(profile.storage.data_dir) / "mqtt" / "spool.sqlite3", limits)
        self.connection = Connection(config, config.client_id or f"appliance-{profile.device.id}",
                                     self.topics.availability)  # fmt: skip
        self.connection.start()
        self.problem, self.active = self.connection.problem, True
        log.info("mqtt: publishing to %s under %s/ (%d event(s) waiting in the spool)",
                 self.connection.address, self.topics.base, self.spool.count)  # fmt: skip

    def _close_connection(self) -> None:
        if self.connection is not None:
            self.connection.stop((self.topics.availability, "offline"), STOP_TIMEOUT_S)
            self.connection = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        self._inflight.clear()
        self._last_sent_row = 0
        self._cameras.clear()
        self._areas.clear()
        self.problem, self.active = None, False

    def _service(self) -> None:
        """Take what the connection reported, then send what waits in the spool."""
        assert self.connection is not None and self.spool is not None
        while True:
            try:
                self._take(self.connection.notices.get_nowait())
            except queue.Empty:
                break
        self.spool.remove(self._delivered)
        self.delivered += len(self._delivered)
        self._delivered.clear()
        self._finish_commands()
        self._forward()
        self._refresh()
        self._flush_areas()
        self._report_refused_commands()
        self.lost = self.spool.dropped + self._lost_unspooled + self._unspooled
        unspooled = "the spool cannot keep events (disk full?)" if self._unspooled else None
        self.problem, self.spooled = self.connection.problem or unspooled, self.spool.count
        draining = self.connection.connected and self.spool.count > 0
        self.idle_after_s = 0.0 if draining else IDLE_AFTER_S

    def _take(self, notice: Notice) -> None:
        match notice:
            case Connected():
                self._connected()
            case Disconnected():
                self._inflight.clear()
                self._last_sent_row = 0
            case Acknowledged(mid=mid) if mid in self._inflight:
                self._delivered.append(self._inflight.pop(mid))
            case Received(topic=topic, payload=payload, retained=retained):
                self._received(topic, payload, retained)

    def _connected(self) -> None:
        """A new session: availability, subscriptions, discovery and every retained state again;
        then the spool from its oldest message (what was in flight may arrive twice)."""
        assert self.connection is not None
        self._inflight.clear()
        self._last_sent_row = 0
        self._publish(self.topics.availability, b"online", retain=True)
        subscriptions = self.topics.commands
        if self.config.discovery.enabled:
            subscriptions += (self._birth_topic,)
        self.connection.subscribe(subscriptions)
        self._publish_discovery()
        self._publish_device()
        self._publish_enabled()
        for view in self._cameras.values():
            view.published, view.published_at = None, float("-inf")
        self._areas.clear()
        self._refresh(force=True)
        snapshot = self.state.snapshot()
        for area in snapshot.areas.values():
            self._area(area)
        if snapshot.update is not None:
            self._publish_update(snapshot.update)

    def _forward(self) -> None:
        """Publish spooled messages, in order, keeping at most MAX_INFLIGHT unacknowledged."""
        connection, spool = self.connection, self.spool
        if connection is None or spool is None or not connection.connected:
            return
        room = MAX_INFLIGHT - len(self._inflight)
        if room <= 0:
            return
        for message in spool.after(self._last_sent_row, room):
            info = connection.publish(message.topic, message.payload, qos=max(1, self.config.qos))
            if info.rc != MQTT_ERR_SUCCESS:
                return  # the connection is going; the next session sends it
            self._inflight[info.mid] = message.row
            self._last_sent_row = message.row

    def _queue(self, topic: str, body: Json) -> None:
        """An event that must arrive: into the spool, then out in order. One the spool cannot
        keep (a full disk) is counted as lost, and said once until the spool works again."""
        assert self.spool is not None
        try:
            self.spool.put(topic, self._payload(body), time.time())
        except sqlite3.Error as error:
            if not self._unspooled:
                log.error("mqtt: cannot keep events in the spool (%s); they are counted as lost until it can", error)
            self._unspooled += 1
            return
        if self._unspooled:
            log.warning("mqtt: spooling again; %d event(s) lost meanwhile", self._unspooled)
            self._lost_unspooled, self._unspooled = self._lost_unspooled + self._unspooled, 0
        self._forward()

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int | None = None) -> None:
        """State: sent now if connected, else left to the next session's republish."""
        if self.connection is not None and self.connection.connected:
            self.connection.publish(topic, payload, self.config.qos if qos is None else qos, retain)

    def _payload(self, body: Json) -> bytes:
        assert self.spool is not None
        numbered = {"type": body["type"], "v": body["v"], "seq": self.spool.next_sequence(), **body}
        return json.dumps(numbered, separators=(",", ":"), allow_nan=False).encode()

    # State.

    def _view(self, camera_id: str) -> _CameraView:
        if camera_id not in self._cameras:
            self._cameras[camera_id] = _CameraView(
                CameraState(camera_id, camera_id, "starting", None, 0.0, 0, 0, 0, None)
            )
        return self._cameras[camera_id]

    def _frame(self, event: FrameResult) -> None:
        view = self._view(event.camera_id)
        people, violating = event.people, event.people_in_violation
        view.state = replace(view.state, people=people, people_in_violation=violating, status="online", reason=None)
        view.t = event.timestamp
        if view.due(time.monotonic(), self.config.state_interval_s):
            self._publish_camera(event.camera_id, view)
        interval = self.config.detections_interval_s
        if event.tracks is not None and interval is not None and event.timestamp - view.detections_at >= interval:
            view.detections_at = event.timestamp
            self._publish(self.topics.camera(event.camera_id, "detections"), self._payload(to_json(event)), qos=0)

    def _refresh(self, force: bool = False) -> None:
        """Camera status and FPS from the runtime state; the device's facts now and then."""
        now = time.monotonic()
        if not force and now - self._refreshed_at < REFRESH_S:
            return
        self._refreshed_at = now
        cameras = self.state.snapshot().cameras
        for camera in self.loaded.profile.cameras:
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
            if view.due(now, self.config.state_interval_s):
                self._publish_camera(camera.id, view)
        if now - self._device_at >= DEVICE_REPUBLISH_S:
            self._publish_device()

    def _publish_camera(self, camera_id: str, view: _CameraView) -> None:
        body = camera_state_json(view.state, view.t if view.t is not None else time.time())
        self._publish(self.topics.camera(camera_id, "state"), self._payload(body), retain=True)
        view.published, view.published_at = view.key(), time.monotonic()

    def _area(self, event: AreaUpdate) -> None:
        view = self._areas.setdefault(event.area_id, _AreaView(event))
        view.latest = event
        self._publish_area(view, time.monotonic())

    def _flush_areas(self) -> None:
        """The areas whose last change waited for their interval."""
        now = time.monotonic()
        for view in self._areas.values():
            self._publish_area(view, now)

    def _publish_area(self, view: _AreaView, now: float) -> None:
        if view.due(now, self.config.state_interval_s):
            topic = self.topics.area(view.latest.area_id, "state")
            self._publish(topic, self._payload(to_json(view.latest)), retain=True)
            view.published, view.published_at = view.key(), now

    def _publish_device(self) -> None:
        self._device_at = time.monotonic()
        body = device_json(self.state.snapshot().device, time.time())
        self._publish(self.topics.device, self._payload(body), retain=True)

    def _publish_update(self, status: UpdateStatus) -> None:
        self._publish(self.topics.update, self._payload(to_json(status)), retain=True)

    def _publish_enabled(self) -> None:
        for camera in self.loaded.profile.cameras:
            self._publish(
                self.topics.camera(camera.id, "enabled"), (ON if camera.enabled else OFF).encode(), retain=True
            )

    def _publish_discovery(self) -> None:
        """Every entity's config; an empty retained config for each one no longer there."""
        if not self.config.discovery.enabled or self.spool is None:
            return
        configs = discovery_configs(self.loaded.profile, self.topics)
        for topic in self.spool.discovery_topics() - configs.keys():
            self._publish(topic, b"", retain=True, qos=1)
        for topic, payload in configs.items():
            self._publish(topic, payload.encode(), retain=True, qos=1)
        self.spool.set_discovery_topics(set(configs))

    @property
    def _birth_topic(self) -> str:
        return f"{self.config.discovery.prefix.rstrip('/')}/status"

    # Commands.

    def _received(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self._birth_topic:
            if payload == b"online":
                self._publish_discovery()  # Home Assistant restarted
            return
        if retained:  # left on the broker by someone: obeying it would undo the operator at every start
            log.warning(
                "mqtt: ignoring a retained command on %s; commands must not be retained", REDACTOR.redact(topic)
            )
            return
        if not self._commands.take():
            return  # counted; reported once per interval by _report_refused_commands
        if len(payload) > MAX_COMMAND_BYTES:
            self._reject(topic, f"payload of {len(payload)} bytes; commands are at most {MAX_COMMAND_BYTES}")
            return
        parts = topic.removeprefix(self.topics.base + "/").split("/")
        if len(parts) != 4 or parts[0] != "camera" or parts[2] not in ("enabled", "snapshot"):
            self._reject(topic, "unknown command; commands: camera/<id>/enabled/set, camera/<id>/snapshot/set")
            return
        camera_id = parts[1]
        if camera_id not in {c.id for c in self.loaded.profile.cameras}:
            self._reject(topic, f"no camera '{camera_id}' in the profile")
        elif parts[2] == "snapshot":
            if self.request_snapshot(camera_id):
                self._snapshots_asked.add(camera_id)
            else:
                self._reject(topic, f"camera '{camera_id}' is not running: no snapshot")
        else:
            self._enable(topic, camera_id, payload)

    def _report_refused_commands(self) -> None:
        """Commands over the rate limit, once a minute at most: a flood makes one line, not an
        event each (which would push real events out of the spool)."""
        now = time.monotonic()
        if now - self._commands_reported_at >= COMMAND_REPORT_S and (refused := self._commands.take_refused()):
            self._commands_reported_at = now
            log.warning("mqtt: %d command(s) refused over the limit of %d at once, %g a second after",
                        refused, COMMAND_BURST, COMMANDS_PER_S)  # fmt: skip

    def _enable(self, topic: str, camera_id: str, payload: bytes) -> None:
        word = payload.decode("utf-8", errors="replace").strip().lower()
        if word not in ENABLE_WORDS:
            self._reject(topic, "the payload must be ON or OFF")
            return
        enabled = ENABLE_WORDS[word]
        future = self.changes.edit(partial(_set_camera_enabled, camera_id, enabled), source="mqtt")
        self._outcomes.put((camera_id, enabled, future))

    def _finish_commands(self) -> None:
        """Echo finished commands on their state topics; report the refused ones."""
        waiting: list[tuple[str, bool, Future[ChangeOutcome]]] = []
        while True:
            try:
                camera_id, enabled, future = self._outcomes.get_nowait()
            except queue.Empty:
                break
            if not future.done():
                waiting.append((camera_id, enabled, future))
                continue
            topic = self.topics.camera(camera_id, "enabled/set")
            try:
                outcome = future.result()
            except RuntimeError as error:  # the runtime is stopping
                self._reject(topic, str(error))
                continue
            if outcome.applied:
                self._publish(self.topics.camera(camera_id, "enabled"), (ON if enabled else OFF).encode(), retain=True)
            else:
                self._reject(topic, "; ".join(REDACTOR.redact(str(issue)) for issue in outcome.errors))
                self._publish_enabled()
        for item in waiting:
            self._outcomes.put(item)

    def _reject(self, topic: str, message: str) -> None:
        body = command_error_json(topic, message, time.time())
        log.warning("mqtt: command on %s refused: %s", body["topic"], message)
        self._queue(self.topics.error, body)


def _set_camera_enabled(camera_id: str, enabled: bool, document: CommentedMap) -> None:
    """The profile-change edit behind `camera/<id>/enabled/set`."""
    for camera in document.get("cameras") or ():
        if isinstance(camera, dict) and camera.get("id") == camera_id:
            camera["enabled"] = enabled
            return
    raise ValueError(f"camera '{camera_id}' is not in this profile file but in one it extends; change it there")
