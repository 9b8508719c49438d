"""The MQTT output: the appliance's state and events on a broker, Home Assistant discovery, and
commands in. It puts three parts together on its output thread: the delivery of events through
the spool (delivery.py), the retained views (views.py), and the commands (commands.py), which the
runtime's dispatcher executes.

It never waits for the broker: retained state is published when connected and republished whole
on each connection; events (violation episodes, alerts, profile changes, command errors) go
through the on-disk spool and leave it when the broker acknowledges them, oldest first.
docs/mqtt.md has every topic and payload."""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.config.model import MqttConfig
from appliance.runtime.commands import Dispatcher
from appliance.runtime.events import (
    AreaAlert,
    AreaMasks,
    AreaUpdate,
    CameraLifecycle,
    CameraStatus,
    ConfigChanged,
    EpisodeEvent,
    Event,
    FrameResult,
    LineUpdate,
    MaskMinute,
    Snapshot,
    UpdateStatus,
    WorkerFailed,
    ZoneUpdate,
    ZoneVisitEvent,
)
from appliance.runtime.outputs.base import Output
from appliance.runtime.outputs.mqtt.commands import CommandIntake
from appliance.runtime.outputs.mqtt.connection import (
    Acknowledged,
    Connected,
    Connection,
    Disconnected,
    Notice,
    Received,
)
from appliance.runtime.outputs.mqtt.delivery import Delivery
from appliance.runtime.outputs.mqtt.spool import MqttSpool
from appliance.runtime.outputs.mqtt.topics import Topics
from appliance.runtime.outputs.mqtt.views import RetainedViews
from appliance.runtime.outputs.spool import SpoolLimits
from appliance.runtime.serialize import Json, command_error_json, to_json
from appliance.runtime.state import RuntimeState

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 2.0
IDLE_AFTER_S = 0.5
DRAIN_WAIT_S = 0.05  # while the spool drains, idle() waits this long for the broker's answers


class MqttOutput(Output):
    name = "mqtt"

    def __init__(self, loaded: LoadedProfile, state: RuntimeState, dispatcher: Dispatcher) -> None:
        self.loaded = loaded
        self.state = state
        self.topics = Topics.for_profile(loaded.profile)
        self.connection: Connection | None = None
        self.delivery: Delivery | None = None
        self.views: RetainedViews | None = None
        self.commands = CommandIntake(dispatcher, self._refuse)
        self.active = False

    @property
    def config(self) -> MqttConfig:
        return self.loaded.profile.mqtt

    def start(self) -> None:
        if self.config.enabled:
            self._open()

    def handle(self, event: Event) -> None:
        if self.views is None or self.delivery is None:
            return
        self._service()
        match event:
            case FrameResult():
                self.views.frame(event)
            case CameraStatus() | CameraLifecycle() | WorkerFailed():
                self.views.refresh(force=True)
            case EpisodeEvent():
                self._queue(self.topics.camera(event.episode.camera_id, "episode"), to_json(event))
                self.views.refresh(force=True)  # the camera's violation sensor follows open episodes
            case Snapshot() if event.camera_id in self.commands.snapshots_asked:  # not the API's live views
                self.commands.snapshots_asked.discard(event.camera_id)
                self._publish(self.topics.camera(event.camera_id, "snapshot"), event.jpeg, retain=True)
            case AreaUpdate():
                self.views.area(event)
            case AreaAlert():
                self._queue(self.topics.area(event.area_id, "alert"), to_json(event))
            case ZoneUpdate():
                self.views.zone(event)
            case LineUpdate(crossing=crossing):
                self._queue(self.topics.camera(crossing.camera_id, f"line/{crossing.line_id}/crossing"), to_json(event))
                self.views.line(event)
            case ZoneVisitEvent(visit=visit):
                self._queue(self.topics.camera(visit.camera_id, f"zone/{visit.zone_id}/visit"), to_json(event))
            case MaskMinute():
                self.views.masks(event)
            case AreaMasks():
                self.views.area_masks(event)
            case ConfigChanged():
                self._queue(self.topics.config, to_json(event))
                self.views.device()
            case UpdateStatus():
                self.views.update(event)

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
        elif self.views is not None and self.connection is not None and self.connection.connected:
            self.views.change_profile(profile)
        elif self.views is not None:
            self.views.profile = profile

    def close(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.delivery is not None and self.delivery.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)  # let the broker acknowledge what it has, so it is not sent twice
            self._service()
        self._close_connection()

    def _open(self) -> None:
        profile, config = self.loaded.profile, self.config
        self.topics = Topics.for_profile(profile)
        limits = SpoolLimits(config.spool.max_messages, config.spool.max_bytes, config.spool.max_age_s)
        self.delivery = Delivery(MqttSpool(Path(profile.storage.data_dir) / "mqtt" / "spool.sqlite3", limits))
        self.views = RetainedViews(profile, self.topics, self.state, self.delivery, self._publish)
        self.connection = Connection(config, config.client_id or f"appliance-{profile.device.id}",
                                     self.topics.availability)  # fmt: skip
        self.connection.start()
        self.problem, self.active = self.connection.problem, True
        log.info("mqtt: publishing to %s under %s/ (%d event(s) waiting in the spool)",
                 self.connection.address, self.topics.base, self.delivery.spool.count)  # fmt: skip

    def _close_connection(self) -> None:
        if self.connection is not None:
            self.connection.stop((self.topics.availability, "offline"), STOP_TIMEOUT_S)
            self.connection = None
        if self.delivery is not None:
            self.delivery.close()
            self.delivery = None
        self.views = None
        self.problem, self.active = None, False

    def _service(self) -> None:
        """Take what the connection reported, then send what waits in the spool."""
        assert self.connection is not None and self.delivery is not None and self.views is not None
        while True:
            try:
                self._take(self.connection.notices.get_nowait())
            except queue.Empty:
                break
        self.delivery.settle()
        for edit, applied in self.commands.finished():
            if applied:
                self.views.switch(edit.camera_id, edit.enabled)
            else:
                self.views.switches()
        self.delivery.forward(self.connection, self.config.qos)
        self.views.refresh()
        self.views.flush_counts()
        self.commands.report_refused()
        self.delivered, self.lost = self.delivery.delivered, self.delivery.lost
        self.problem, self.spooled = self.connection.problem or self.delivery.problem, self.delivery.spool.count
        draining = self.connection.connected and self.delivery.spool.count > 0
        self.idle_after_s = 0.0 if draining else IDLE_AFTER_S

    def _take(self, notice: Notice) -> None:
        assert self.connection is not None and self.delivery is not None and self.views is not None
        match notice:
            case Connected():
                self.delivery.restart()  # what was in flight may arrive twice
                self._publish(self.topics.availability, b"online", retain=True)
                subscriptions = self.topics.commands
                if self.config.discovery.enabled:
                    subscriptions += (self._birth_topic,)
                self.connection.subscribe(subscriptions)
                self.views.republish()
            case Disconnected():
                self.delivery.restart()
            case Acknowledged(mid=mid):
                self.delivery.acknowledged(mid)
            case Received(topic=topic, payload=payload, retained=retained):
                if topic == self._birth_topic:
                    if payload == b"online":
                        self.views.discovery()  # Home Assistant restarted
                    return
                cameras = [camera.id for camera in self.loaded.profile.cameras]
                self.commands.receive(self.topics.base, cameras, topic, payload, retained)

    def _queue(self, topic: str, body: Json) -> None:
        """An event that must arrive: into the spool, then out in order."""
        assert self.delivery is not None and self.connection is not None
        self.delivery.put(topic, body)
        self.delivery.forward(self.connection, self.config.qos)

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int | None = None) -> None:
        """State: sent now if connected, else left to the next session's republish."""
        if self.connection is not None and self.connection.connected:
            self.connection.publish(topic, payload, self.config.qos if qos is None else qos, retain)

    @property
    def _birth_topic(self) -> str:
        return f"{self.config.discovery.prefix.rstrip('/')}/status"

    def _refuse(self, topic: str, message: str) -> None:
        body = command_error_json(topic, message, time.time())
        log.warning("mqtt: command on %s refused: %s", body["topic"], message)
        self._queue(self.topics.error, body)
