"""The runtime's state, in one place: each camera's status, FPS and counts, each area's counts
and alerts, the device's identity and config generation. The supervisor's loop feeds it every
event; outputs, the console and the API read consistent snapshots from any thread."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from appliance import __version__
from appliance.config import LoadedProfile
from appliance.config.model import AreaConfig
from appliance.runtime.analysis.alerts import AreaAlerts
from appliance.runtime.analysis.occupancy import CameraCounts, area_status
from appliance.runtime.analysis.schedule import threshold_at
from appliance.runtime.analysis.site import SitePlaces
from appliance.runtime.events import (
    MASK_MINUTE_S,
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
    RunSummary,
    UpdateStatus,
    WorkerFailed,
    ZoneUpdate,
    ZoneVisitEvent,
)
from appliance.runtime.types import Crossing

FPS_WINDOW_S = 5.0
CameraPhase = Literal["starting", "online", "offline", "restarting", "failed", "finished", "disabled"]
_SETTLED: tuple[CameraPhase, ...] = ("online", "failed", "finished")
_PHASE_AFTER: dict[str, CameraPhase] = {
    "worker_started": "starting",
    "worker_restarting": "restarting",
    "camera_failed": "failed",
}


@dataclass(frozen=True, slots=True)
class OutputStats:
    name: str
    queued: int
    handled: int
    dropped: int  # events the full queue turned away
    failures: int  # events the output raised on
    lost: int  # events the output took but could not deliver
    problem: str | None  # why it cannot do its job now; None when it can
    delivered: int = 0
    spooled: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class CameraState:
    camera_id: str
    name: str
    status: CameraPhase
    reason: str | None  # why it is offline, restarting or failed; the last error
    fps: float  # frames processed per second over the last few seconds
    people: int
    people_in_violation: int
    frames: int  # processed since the runtime started, across worker restarts
    progress: tuple[int, int] | None  # files: (frames done, frames in the file)
    open_episodes: int = 0  # violation episodes open now
    t: float | None = None  # the last frame's time: Unix time for live cameras, video time for files


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    name: str
    profile: str
    version: str
    generation: int  # profile changes applied since start
    started_at: float  # Unix time
    last_change: ConfigChanged | None
    outputs: tuple[OutputStats, ...]

    @property
    def uptime_s(self) -> float:
        return time.time() - self.started_at


@dataclass(frozen=True, slots=True)
class RuntimeSnapshot:
    device: DeviceState
    cameras: Mapping[str, CameraState]
    areas: Mapping[str, AreaUpdate]
    update: UpdateStatus | None = None  # OTA, once the updater has reported
    zones: Mapping[str, ZoneUpdate] = field(default_factory=dict)  # by CAMERA/ZONE
    lines: Mapping[str, LineUpdate] = field(default_factory=dict)  # by CAMERA/LINE: the last crossing and counts
    masks: Mapping[str, MaskMinute] = field(default_factory=dict)  # by camera: its last minute of mask verdicts
    area_masks: Mapping[str, MaskCounts] = field(default_factory=dict)  # by area: the sum of its cameras' and zones'

    @property
    def ready(self) -> bool:
        """Every camera has opened (or failed, or finished its file)."""
        return all(camera.status in _SETTLED for camera in self.cameras.values())


@dataclass
class _RunTotals:
    """A camera's counts over the whole run, for its summary."""

    people: int = 0
    in_violation: int = 0
    peak_people: int = 0
    peak_in_violation: int = 0
    episodes: int = 0

    def add(self, counts: CameraCounts) -> None:
        self.people += counts.people
        self.in_violation += counts.people_in_violation
        self.peak_people = max(self.peak_people, counts.people)
        self.peak_in_violation = max(self.peak_in_violation, counts.people_in_violation)


@dataclass
class _Camera:
    name: str
    status: CameraPhase = "starting"
    reason: str | None = None
    counts: CameraCounts = field(default_factory=lambda: CameraCounts(0, 0))
    frames: int = 0
    progress: tuple[int, int] | None = None
    processed: deque[float] = field(default_factory=deque)  # when the worker finished recent frames (monotonic)
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    detect_seconds: float = 0.0  # in the detector, over every frame after the first
    last_frame_t: float | None = None  # the last frame's own timestamp
    open_episodes: set[tuple[int, int]] = field(default_factory=set)  # pairs of track ids
    run: _RunTotals = field(default_factory=_RunTotals)

    def fps(self) -> float:
        times = self.processed
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


def _counts_camera(area: AreaConfig, camera_id: str) -> bool:
    """Whether a frame of this camera may change the area's counts (an estimate from entrances
    goes back to zero at its reset time, which a frame may be the first to pass)."""
    places = (*area.zones, *area.entrances)
    return camera_id in area.cameras or any(place.partition("/")[0] == camera_id for place in places)


def area_masks(areas: Iterable[AreaConfig], masks: Mapping[str, MaskMinute]) -> dict[str, MaskCounts]:
    """Each area's mask counts: its whole cameras' last minutes, and its zones' (CAMERA/ZONE) in
    their cameras' last minutes, added up (a person seen by two cameras counts twice); only
    areas with a minute of some camera."""
    totals = {}
    for area in areas:
        parts = [masks[c].counts for c in area.cameras if c in masks]
        for place in area.zones:
            camera_id, zone_id = place.split("/", 1)
            if camera_id in masks:
                parts += [counts for zone, counts in masks[camera_id].zones if zone == zone_id]
                parts += [MaskCounts()]  # a zone of a camera that judged, with nobody in it
        if parts:
            totals[area.id] = MaskCounts(sum(p.masked for p in parts), sum(p.unmasked for p in parts),
                                         sum(p.too_small for p in parts))  # fmt: skip
    return totals


class RuntimeState:
    """Fed on the supervisor's loop by `handle`; read from anywhere through `snapshot`."""

    def __init__(self, loaded: LoadedProfile) -> None:
        self._lock = threading.Lock()
        self._cameras: dict[str, _Camera] = {}
        self._areas: dict[str, AreaUpdate] = {}
        self._alerts: dict[str, AreaAlerts] = {}
        self._alerts_raised: Counter[str] = Counter()
        self._generation = 0
        self._last_change: ConfigChanged | None = None
        self._update: UpdateStatus | None = None
        self._masks: dict[str, MaskMinute] = {}
        self._started_at = time.time()
        self.output_stats: Callable[[], tuple[OutputStats, ...]] = tuple  # the bus sets it
        self._places = SitePlaces(loaded.profile)
        self.set_profile(loaded)

    def set_profile(self, loaded: LoadedProfile) -> None:
        """Follow a new profile: names, areas and their alert rules (kept for unchanged areas)."""
        with self._lock:
            self._loaded = loaded
            profile = loaded.profile
            for camera in profile.cameras:
                if camera.id in self._cameras:
                    self._cameras[camera.id].name = camera.name or camera.id
            old = self._alerts
            self._alerts = {
                a.id: old[a.id] if a.id in old and old[a.id].area == a else AreaAlerts(a) for a in profile.areas
            }
            self._areas = {k: v for k, v in self._areas.items() if k in self._alerts}
            self._places.configure(profile)
            self._time_zone = ZoneInfo(profile.device.timezone)

    @property
    def loaded(self) -> LoadedProfile:
        """The profile running now; a change's new profile is here before its caller hears back."""
        with self._lock:
            return self._loaded

    def handle(self, event: Event) -> list[Event]:
        """Take one event; return the events it leads to (area updates and alerts)."""
        with self._lock:
            match event:
                case FrameResult():
                    return self._frame(event)
                case Crossing():
                    return self._crossing(event)
                case ZoneVisitEvent(kind="loitering"):
                    return self._loitering(event)
                case CameraStatus():
                    self._status(event)
                case WorkerFailed():
                    self._camera(event.camera_id).reason = event.message
                case EpisodeEvent():
                    self._episode(event)
                case CameraLifecycle():
                    self._lifecycle(event)
                case ConfigChanged():
                    self._last_change = event
                    self._generation = event.generation
                case UpdateStatus():
                    self._update = event
                case MaskMinute():
                    return self._mask_minute(event)
            return []

    def snapshot(self) -> RuntimeSnapshot:
        stats = self.output_stats()
        with self._lock:
            device = self._loaded.profile.device
            cameras = {camera_id: self._camera_state(camera_id, c) for camera_id, c in self._cameras.items()}
            state = DeviceState(
                device.id, device.display_name, self._loaded.name, __version__, self._generation,
                self._started_at, self._last_change, stats,
            )  # fmt: skip
            profile = self._loaded.profile
            masks = {c: m for c, m in self._masks.items() if any(camera.id == c for camera in profile.cameras)}
            return RuntimeSnapshot(state, cameras, dict(self._areas), self._update, self._places.zones(),
                                   self._places.lines(), masks, area_masks(profile.areas, masks))  # fmt: skip

    def run_summary(self, events_folder: str) -> RunSummary:
        """Each camera's figures over the run, and the alerts raised."""
        with self._lock:
            cameras = tuple(self._camera_summary(camera_id, c) for camera_id, c in self._cameras.items())
            return RunSummary(cameras, {area: self._alerts_raised[area] for area in self._alerts}, events_folder)

    @staticmethod
    def _camera_summary(camera_id: str, camera: _Camera) -> CameraSummary:
        run, frames = camera.run, max(camera.frames, 1)
        seconds = (camera.last_frame_at or 0.0) - (camera.first_frame_at or 0.0)
        return CameraSummary(
            camera_id=camera_id, frames=camera.frames, seconds=seconds, peak_people=run.peak_people,
            mean_people=run.people / frames, peak_in_violation=run.peak_in_violation,
            mean_in_violation=run.in_violation / frames, episodes=run.episodes,
        )  # fmt: skip

    def summary(self, camera_id: str) -> str | None:
        """A camera's throughput over the whole run, against its detector's own."""
        with self._lock:
            camera = self._cameras.get(camera_id)
            if camera is None or camera.first_frame_at is None or camera.last_frame_at is None or camera.frames < 2:
                return None
            seconds = camera.last_frame_at - camera.first_frame_at
            fps = (camera.frames - 1) / seconds if seconds > 0 else 0.0
            detector_fps = (camera.frames - 1) / camera.detect_seconds if camera.detect_seconds > 0 else 0.0
        return (
            f"camera {camera_id}: {camera.frames} frames in {seconds:.1f} s, {fps:.2f} fps; "
            f"the detector alone: {detector_fps:.2f} fps"
        )

    def _camera(self, camera_id: str) -> _Camera:
        if camera_id not in self._cameras:
            known = {c.id: c.name or c.id for c in self._loaded.profile.cameras}
            self._cameras[camera_id] = _Camera(known.get(camera_id, camera_id))
        return self._cameras[camera_id]

    def _frame(self, event: FrameResult) -> list[Event]:
        camera, now = self._camera(event.camera_id), time.monotonic()
        if camera.first_frame_at is None:
            camera.first_frame_at = now
        else:
            camera.detect_seconds += event.stage_seconds.get("detect", 0.0)
        camera.last_frame_at, camera.last_frame_t = now, event.timestamp
        camera.frames += 1
        camera.status, camera.reason = "online", None
        camera.counts = CameraCounts(event.people, event.people_in_violation)
        camera.run.add(camera.counts)
        camera.processed.append(event.processed_at)
        while event.processed_at - camera.processed[0] > FPS_WINDOW_S:
            camera.processed.popleft()
        zones: list[Event] = list(self._places.frame(event))
        areas = [a for a in self._alerts.values() if _counts_camera(a.area, event.camera_id)]
        return zones + self._update_areas([a.area.id for a in areas], event.timestamp)

    def _crossing(self, event: Crossing) -> list[Event]:
        update, areas = self._places.crossing(event)
        return ([update] if update else []) + self._update_areas(areas, event.timestamp)

    def _mask_minute(self, event: MaskMinute) -> list[Event]:
        """Keep the camera's minute; the new sums of the areas it is part of, and the alerts of those
        whose rule the sum meets."""
        self._masks[event.camera_id] = event
        totals = area_masks((a.area for a in self._alerts.values()), self._masks)
        raised: list[Event] = []
        for area_id, alerts in self._alerts.items():
            area = alerts.area
            if area_id in totals and (event.camera_id in area.cameras or
                                      any(z.startswith(f"{event.camera_id}/") for z in area.zones)):  # fmt: skip
                raised.append(AreaMasks(area_id, event.start, totals[area_id]))
                alerts_now = alerts.masks(totals[area_id], event.start + MASK_MINUTE_S, self._areas.get(area_id))
                self._alerts_raised[area_id] += len(alerts_now)
                raised += alerts_now
        return raised

    def _loitering(self, event: ZoneVisitEvent) -> list[Event]:
        place = f"{event.visit.camera_id}/{event.visit.zone_id}"
        raised: list[Event] = []
        for area_id, alerts in self._alerts.items():
            if place in alerts.area.zones:
                alerts_now = alerts.loitering(event, self._areas.get(area_id))
                self._alerts_raised[area_id] += len(alerts_now)
                raised += alerts_now
        return raised

    def _update_areas(self, area_ids: list[str], timestamp: float) -> list[Event]:
        online = {i for i, c in self._cameras.items() if c.status == "online"}
        counts = {i: self._cameras[i].counts for i in online}
        derived: list[Event] = []
        for area_id in area_ids:
            alerts = self._alerts[area_id]
            zones, estimate = self._places.zone_counts(alerts.area, online), self._places.estimate(area_id, timestamp)
            threshold = threshold_at(alerts.area, timestamp, self._time_zone)
            status = area_status(alerts.area, counts, threshold=threshold, timestamp=timestamp, zones=zones,
                                 estimated_people=estimate)  # fmt: skip
            self._areas[area_id] = status
            raised = alerts.update(status)
            self._alerts_raised[area_id] += len(raised)
            derived += [status, *raised]
        return derived

    def _status(self, event: CameraStatus) -> None:
        camera = self._camera(event.camera_id)
        camera.progress = event.progress
        if event.finished:
            camera.status = "finished"
        elif camera.status not in ("restarting", "failed"):
            camera.status = "online" if event.online else "offline"
        if event.error or camera.status == "online":
            camera.reason = event.error

    def _episode(self, event: EpisodeEvent) -> None:
        episodes = self._camera(event.episode.camera_id).open_episodes
        if event.kind == "started":
            episodes.add(event.episode.pair)
            self._camera(event.episode.camera_id).run.episodes += 1
        else:
            episodes.discard(event.episode.pair)

    def _lifecycle(self, event: CameraLifecycle) -> None:
        if event.kind == "camera_stopped":
            self._cameras.pop(event.camera_id, None)
            return
        camera = self._camera(event.camera_id)
        camera.status = _PHASE_AFTER[event.kind]
        camera.reason = event.reason or camera.reason
        camera.processed.clear()
        camera.open_episodes.clear()  # a new worker starts with none

    def _camera_state(self, camera_id: str, camera: _Camera) -> CameraState:
        fps = camera.fps() if camera.status == "online" else 0.0
        counts = camera.counts if camera.status == "online" else CameraCounts(0, 0)
        return CameraState(
            camera_id, camera.name, camera.status, camera.reason, fps, counts.people,
            counts.people_in_violation, camera.frames, camera.progress,
            len(camera.open_episodes) if camera.status == "online" else 0, camera.last_frame_t,
        )  # fmt: skip
