"""The runtime's events: what camera workers report and what the supervisor, the state and the
profile-change path announce. Small picklable records (workers' events cross a process
boundary); outputs receive them on the bus and turn them into JSON with `serialize`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from appliance.runtime.types import Box, Crossing, LineCounts, ViolationEpisode, ZoneCount, ZoneVisit


@dataclass(frozen=True, slots=True)
class TrackRecord:
    track_id: int
    box: Box
    score: float
    in_violation: bool = False  # closer than the threshold to someone in this frame


@dataclass(frozen=True, slots=True)
class FrameTally:
    """Every frame of a camera since its previous sampled frame, the sampled one included: what
    a sample stands for, so that history's means and maxima count every frame."""

    frames: int
    people_sum: int
    people_max: int
    in_violation_sum: int
    in_violation_max: int


@dataclass(frozen=True, slots=True)
class FrameResult:
    """One processed frame of a camera."""

    camera_id: str
    index: int
    timestamp: float  # wall clock (live) or video time (files)
    people: int
    people_in_violation: int
    stage_seconds: dict[str, float]  # wait, decode, queue, detect, track, analyse
    tracks: tuple[TrackRecord, ...] | None = None  # present on sampled frames only
    zones: tuple[ZoneCount, ...] = ()  # the camera's zones, as this frame found them
    tally: FrameTally | None = None  # on sampled frames: the frames since the previous sample
    # when the worker finished it: CLOCK_MONOTONIC, one clock for every process of the machine,
    # so a supervisor that was held up still measures the worker's own rate
    processed_at: float = field(default_factory=time.monotonic)


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
    skipped: int = 0  # frames fps_cap skipped
    motion_skipped: int = 0  # frames that reused the last detections: nothing moved
    sent_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class EpisodeEvent:
    episode: ViolationEpisode
    kind: Literal["started", "ended"]


@dataclass(frozen=True, slots=True)
class ZoneVisitEvent:
    """A visit of a zone ended, or passed the zone's loitering_s."""

    visit: ZoneVisit
    kind: Literal["ended", "loitering"]
    timestamp: float  # when it ended, or when the person had been in the zone loitering_s


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A camera's latest frame as JPEG, every person's head hidden; made when asked for."""

    camera_id: str
    timestamp: float
    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """A worker that cannot go on (bad model, unreadable file); the supervisor restarts it."""

    camera_id: str
    message: str
    timestamp: float = field(default_factory=time.time)


LifecycleKind = Literal["worker_started", "worker_restarting", "camera_failed", "camera_stopped"]


@dataclass(frozen=True, slots=True)
class CameraLifecycle:
    """The supervisor started, is restarting, gave up on, or stopped a camera's worker."""

    kind: LifecycleKind
    camera_id: str
    reason: str = ""
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class AreaUpdate:
    """An area's counts after one of its cameras reported a frame."""

    area_id: str
    timestamp: float  # of the frame that changed it
    people: int
    people_in_violation: int
    cameras_reporting: int  # cameras of the area that gave counts (offline ones do not)
    threshold: int | None
    over_threshold: bool
    environment_score: float
    estimated_people: int | None = None  # from its entrances; None when it has none

    @property
    def occupancy(self) -> int:
        """What its threshold applies to: the estimate from its entrances where it has some."""
        return self.people if self.estimated_people is None else self.estimated_people


@dataclass(frozen=True, slots=True)
class ZoneUpdate:
    """A zone's counts after its camera reported a frame."""

    camera_id: str
    zone_id: str
    timestamp: float
    people: int
    people_in_violation: int
    dwell_s: tuple[float, ...]  # running time of each visit open now, longest first


@dataclass(frozen=True, slots=True)
class LineUpdate:
    """A line's counts in local time after a crossing."""

    crossing: Crossing
    counts: LineCounts


AlertKind = Literal["occupancy", "violation", "loitering", "unmasked"]
ALERT_KINDS: tuple[AlertKind, ...] = ("occupancy", "violation", "loitering", "unmasked")


@dataclass(frozen=True, slots=True)
class AreaAlert:
    """An area went over its occupancy threshold, met its violation alert rule, or someone
    loitered in one of its zones."""

    area_id: str
    kind: AlertKind
    timestamp: float
    people: int
    people_in_violation: int
    detail: str


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """A profile change applied (with what restarted or took it in place) or rejected (with why)."""

    kind: Literal["applied", "rejected"]
    generation: int
    source: str  # reload, file, api, mqtt, ota
    restarted: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    reconfigured: tuple[str, ...] = ()  # cameras that took the change in place
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What became of one OTA bundle (also a line of the update history)."""

    bundle: str
    outcome: Literal["installed", "rejected", "rolled_back"]
    at: float  # Unix time
    version: int | None = None
    kind: str | None = None  # config, model or both
    reason: str | None = None  # a code of appliance.ota.rejection.REASONS
    message: str = ""
    description: str = ""  # the bundle's release notes


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Where OTA updates stand: the installed version, the bundle being applied, the result of
    the one just finished, and the newest result in the history (kept across restarts)."""

    installed_version: int
    in_progress: str | None = None
    result: UpdateResult | None = None
    last_result: UpdateResult | None = None
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class CameraSummary:
    """One camera over a run."""

    camera_id: str
    frames: int
    seconds: float  # from its first frame to its last
    peak_people: int
    mean_people: float
    peak_in_violation: int
    mean_in_violation: float
    episodes: int  # violation episodes started


@dataclass(frozen=True, slots=True)
class RunSummary:
    cameras: tuple[CameraSummary, ...]
    alerts: dict[str, int]  # area id -> alerts raised
    events_folder: str  # where the event log is


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A run of the runtime started or ended; the event log marks each run with it, so runs
    appended to one day's file stay apart."""

    kind: Literal["started", "ended"]
    run_id: str
    input: str | None = None  # historical mode: the recording processed
    summary: RunSummary | None = None  # when it ended
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class MaskCounts:
    """People looked at, by verdict: each counted once, by their most frequent verdict."""

    masked: int = 0
    unmasked: int = 0
    too_small: int = 0


MASK_MINUTE_S = 60.0
MaskVerdict = Literal["masked", "unmasked", "too_small"]
MASK_VERDICTS: tuple[MaskVerdict, ...] = ("masked", "unmasked", "too_small")


@dataclass(frozen=True, slots=True)
class MaskMinute:
    """A camera's face-mask verdicts over one minute, for the camera and each of its zones."""

    camera_id: str
    start: float  # Unix time of the minute's first second
    counts: MaskCounts
    zones: tuple[tuple[str, MaskCounts], ...] = ()


@dataclass(frozen=True, slots=True)
class AreaMasks:
    """An area's face-mask counts after a camera's minute: its cameras' and zones' last minutes added."""

    area_id: str
    minute: float  # the minute of the camera's `MaskMinute` that made it
    counts: MaskCounts


WorkerEvent = (
    FrameResult | CameraStatus | EpisodeEvent | ZoneVisitEvent | Crossing | WorkerFailed | Snapshot | MaskMinute
)
Event = (
    WorkerEvent
    | CameraLifecycle
    | AreaUpdate
    | AreaMasks
    | ZoneUpdate
    | LineUpdate
    | AreaAlert
    | ConfigChanged
    | UpdateStatus
    | RunEvent
)
