"""The internal event stream: what camera workers report, and the bus outputs subscribe to.

Events cross the process boundary from workers to the supervisor, so they are small picklable
records; outputs (metrics, event log, console, later MQTT and the API) subscribe to the bus and
never touch the pipeline."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as StopEvent

from appliance.runtime.analysis.occupancy import AreaStatus
from appliance.runtime.types import Box, ViolationEpisode

log = logging.getLogger(__name__)
ORPHAN_GRACE_S = 5.0
EXIT_ORPHANED = 4


@dataclass(frozen=True, slots=True)
class TrackRecord:
    track_id: int
    box: Box
    score: float


@dataclass(frozen=True, slots=True)
class FrameResult:
    """One processed frame of a camera."""

    camera_id: str
    index: int
    timestamp: float  # wall clock (live) or video time (files)
    people: int
    people_in_violation: int
    stage_seconds: dict[str, float]  # decode, detect, track, analyse
    tracks: tuple[TrackRecord, ...] | None = None  # present on sampled frames only


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A worker's heartbeat, sent at least every second even when no frame comes."""

    camera_id: str
    online: bool
    error: str | None
    frames: int
    dropped: int
    reconnects: int
    finished: bool = False
    progress: tuple[int, int] | None = None  # (frames done, frames in the file) for files
    sent_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class EpisodeEvent:
    episode: ViolationEpisode
    kind: str  # "started" or "ended"


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """A worker that cannot go on (bad model, unreadable file); the supervisor restarts it."""

    camera_id: str
    message: str


@dataclass(frozen=True, slots=True)
class AreaUpdate:
    status: AreaStatus


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Worker lifecycle and configuration changes, from the supervisor itself."""

    kind: str  # worker_started, worker_restarting, camera_failed, config_applied, config_rejected
    camera_id: str | None = None
    detail: str = ""


Event = FrameResult | CameraStatus | EpisodeEvent | WorkerFailed | AreaUpdate | SupervisorEvent
Handler = Callable[[Event], None]


def stop_when_orphaned(stop: threading.Event | StopEvent) -> None:
    """In a child process: set `stop` if the supervisor dies without stopping us (kill -9, or a
    hung supervisor killed by the watchdog), and exit outright if stopping then hangs: with nobody
    reading the event queue, its feeder can block on a full pipe for ever."""
    parent = os.getppid()

    def watch() -> None:
        # Polls rather than waits: a process that dies inside a multiprocessing Event's wait()
        # leaves a later set() in the supervisor blocked for ever.
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the supervisor is gone: stopping")
        stop.set()
        time.sleep(ORPHAN_GRACE_S)
        log.warning("still running %.0f s after the supervisor died: exiting", ORPHAN_GRACE_S)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


class EventBus:
    """Synchronous publish/subscribe inside the supervisor; a failing subscriber is logged and
    never stops the others."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, event: Event) -> None:
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:
                log.exception("output %r failed on %s", handler, type(event).__name__)
