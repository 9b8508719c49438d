"""Local event log: daily JSON Lines files (shapes from serialize.py), written durably, kept for a
number of days and within a disk budget. Per camera (`<camera>/<day>.jsonl`): sampled detections
and every finished violation episode. For the device (`_device/<day>.jsonl`): sampled area
counts, every alert and configuration change. Each run is marked in every file it writes to:
a `run` record when it starts (before its first line there) and when it ends, with its summary.
The history store (appliance/history) is kept up with the log after each flush, on this thread."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.config.model import HistoryConfig
from appliance.history.store import HistoryUnavailableError, HistoryWriter, store_path
from appliance.runtime.events import (
    AreaAlert,
    AreaMasks,
    AreaUpdate,
    ConfigChanged,
    EpisodeEvent,
    Event,
    FrameResult,
    LineUpdate,
    MaskMinute,
    RunEvent,
    ZoneUpdate,
    ZoneVisitEvent,
)
from appliance.runtime.outputs.base import Output
from appliance.runtime.serialize import Json, to_json

log = logging.getLogger(__name__)
SYNC_INTERVAL_S = 1.0
PRUNE_INTERVAL_S = 3600.0
RETRY_INTERVAL_S = 2.0
DEVICE_STREAM = "_device"  # camera ids cannot start with '_'
RESERVE_FRACTION, RESERVE_MAX_BYTES = 0.05, 64 * 1024 * 1024  # free space that counts as recovered
HISTORY_LINES_PER_FLUSH = 50_000  # a rebuild goes on a slice per flush, never holding the log up
HISTORY_LINES_AT_CLOSE = 1_000_000
HISTORY_ERROR_LOG_INTERVAL_S = 300.0


def event_log_folder(loaded: LoadedProfile) -> Path:
    return Path(loaded.profile.storage.data_dir) / "events"


@dataclass(frozen=True)
class _DayFile:
    day: str
    path: Path
    descriptor: int


class EventLog(Output):
    """Writes each record as one whole line or not at all. When the disk is full (or the folder
    unwritable) it says so once, counts what it loses, and writes again as soon as it can."""

    name = "event_log"

    def __init__(
        self,
        folder: Path,
        *,
        retention_days: int,
        max_disk_mb: int,
        sample_interval_s: float = 1.0,
        history: HistoryConfig | None = None,
    ) -> None:
        self.folder = folder
        self.history_settings = history
        self.history: HistoryWriter | None = None
        self.retention_days, self.max_bytes = retention_days, max_disk_mb * 1024 * 1024
        self.sample_interval_s = sample_interval_s
        self._files: dict[str, _DayFile] = {}  # camera -> today's file
        self._run_started: Json | None = None  # the `run` record of this run, once it started
        self._marked: set[Path] = set()  # the files this run has marked
        self._sampled: dict[str, float] = {}  # area or CAMERA/ZONE -> time of its last sample
        self._last_sync = self._last_prune = 0.0
        self._lost_before_problem = 0
        self._last_retry = float("-inf")
        self._last_history_error = float("-inf")

    @classmethod
    def for_profile(cls, loaded: LoadedProfile) -> EventLog:
        settings = loaded.profile.storage.event_log
        return cls(event_log_folder(loaded), retention_days=settings.retention_days, max_disk_mb=settings.max_disk_mb,
                   sample_interval_s=settings.sample_interval_s, history=loaded.profile.storage.history)  # fmt: skip

    def start(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._failed(error)
        self.prune()
        if self.history_settings is not None and self.history_settings.enabled:
            try:
                self.history = HistoryWriter(store_path(self.folder.parent), self.folder)
            except (HistoryUnavailableError, OSError, sqlite3.Error) as error:
                log.error("history: cannot keep the store: %s; reports show nothing new until it can", error)

    def reconfigure(self, loaded: LoadedProfile) -> None:
        settings = loaded.profile.storage.event_log
        self.retention_days, self.max_bytes = settings.retention_days, settings.max_disk_mb * 1024 * 1024
        self.sample_interval_s = settings.sample_interval_s
        folder = event_log_folder(loaded)
        history = loaded.profile.storage.history
        if folder != self.folder or history.enabled != (self.history is not None):
            self.history_settings = history
            self.close()
            log.info("event log: now in %s, history %s", folder, "kept" if history.enabled else "off")
            self.folder = folder
            self.start()
        else:
            self.history_settings = history
            self.prune()

    def handle(self, event: Event) -> None:
        match event:
            case FrameResult(tracks=tracks) if tracks is not None:
                self._write(event.camera_id, to_json(event))
            case EpisodeEvent(kind="ended"):
                self._write(event.episode.camera_id, to_json(event), sync=True)
            case AreaUpdate() if self._due(event.area_id, event.timestamp):
                self._write(DEVICE_STREAM, to_json(event))
            case ZoneUpdate() if self._due(f"{event.camera_id}/{event.zone_id}", event.timestamp):
                self._write(event.camera_id, to_json(event))
            case ZoneVisitEvent():
                self._write(event.visit.camera_id, to_json(event), sync=True)
            case MaskMinute():
                self._write(event.camera_id, to_json(event))
            case AreaMasks():
                self._write(DEVICE_STREAM, to_json(event))
            case LineUpdate():
                self._write(event.crossing.camera_id, to_json(event), sync=True)
            case AreaAlert() | ConfigChanged():
                self._write(DEVICE_STREAM, to_json(event), sync=True)
            case RunEvent(kind="started"):
                self._run_started, self._marked = to_json(event), set()
                self._write(DEVICE_STREAM, self._run_started, sync=True)
            case RunEvent():
                self._end_run(to_json(event))
        self.idle()

    def _due(self, key: str, timestamp: float) -> bool:
        """Areas and zones are sampled as detections are: at most once per sample_interval_s
        (in the events' own time; a recording that starts over starts sampling over)."""
        last = self._sampled.get(key)
        if last is not None and 0 <= timestamp - last < self.sample_interval_s:
            return False
        self._sampled[key] = timestamp
        return True

    def _end_run(self, record: Json) -> None:
        """The run's end, with its summary, in every file this run wrote to."""
        streams = {path.parent.name for path in self._marked} | {DEVICE_STREAM}
        for stream in sorted(streams):
            self._write(stream, record, sync=True)
        self._run_started = None

    def idle(self) -> None:
        now = time.monotonic()
        if now - self._last_sync >= SYNC_INTERVAL_S:
            self.flush()
        if now - self._last_prune >= PRUNE_INTERVAL_S:
            self.prune()

    def flush(self, history_lines: int = HISTORY_LINES_PER_FLUSH) -> None:
        """Make everything written so far durable, then bring the history store up with it."""
        self._last_sync = time.monotonic()
        for file in self._files.values():
            try:
                os.fsync(file.descriptor)
            except OSError as error:
                self._failed(error)
        self._update_history(lambda history: history.catch_up(history_lines))

    def close(self) -> None:
        self.flush(HISTORY_LINES_AT_CLOSE)
        for file in self._files.values():
            os.close(file.descriptor)
        self._files.clear()
        self._update_history(HistoryWriter.close)
        self.history = None

    def _update_history(self, action: Callable[[HistoryWriter], object]) -> None:
        if self.history is None:
            return
        try:
            action(self.history)
        except (OSError, sqlite3.Error) as error:
            now = time.monotonic()
            if now - self._last_history_error >= HISTORY_ERROR_LOG_INTERVAL_S:
                self._last_history_error = now
                log.error("history: cannot update %s: %s; it reads the log again when it can", self.history.path, error)

    def prune(self) -> None:
        """Delete files older than the retention, then the oldest beyond the disk budget; the
        history store likewise by its own settings."""
        self._last_prune = time.monotonic()
        if self.history_settings is not None:
            days, max_bytes = self.history_settings.retention_days, self.history_settings.max_disk_mb * 1024 * 1024
            self._update_history(lambda history: history.prune(retention_days=days, max_bytes=max_bytes))
        try:
            files = sorted(((p, p.stat()) for p in self.folder.glob("*/*.jsonl")), key=lambda f: f[0].name)
            cutoff = time.time() - self.retention_days * 86400
            open_files = {file.path for file in self._files.values()}
            kept = []
            for path, status in files:
                if status.st_mtime < cutoff and path not in open_files:
                    log.info("event log: removing %s (older than %d days)", path, self.retention_days)
                    path.unlink(missing_ok=True)
                else:
                    kept.append((path, status.st_size))
            total = sum(size for _, size in kept)
            for path, size in kept:
                if total <= self.max_bytes or path in open_files:
                    break
                total -= size
                log.info("event log: removing %s (over %d MB)", path, self.max_bytes // (1024 * 1024))
                path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("event log: cannot prune %s: %s", self.folder, error.strerror or error)

    def _write(self, camera_id: str, record: Json, sync: bool = False) -> None:
        if self.problem is not None and not self._worth_retrying():
            self.lost += 1
            return
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            file = self._file(camera_id)
            if self._run_started is not None and file.path not in self._marked:
                self._marked.add(file.path)
                if record is not self._run_started:
                    line = (json.dumps(self._run_started, separators=(",", ":")) + "\n").encode() + line
            _append_whole(file.descriptor, line)
            if sync:
                os.fsync(file.descriptor)
        except OSError as error:
            self._failed(error)
            self.lost += 1
            return
        if self.problem is not None:
            log.warning("event log: writing again; %d record(s) lost meanwhile", self.lost - self._lost_before_problem)
            self.problem = None

    def _worth_retrying(self) -> bool:
        """After a failure, try again every few seconds, and only once the disk has a reserve free
        again: a record that happens to fit the last free bytes is no recovery."""
        now = time.monotonic()
        if now - self._last_retry < RETRY_INTERVAL_S:
            return False
        self._last_retry = now
        try:
            disk = os.statvfs(self.folder)
        except OSError:
            return False
        reserve = min(RESERVE_MAX_BYTES, RESERVE_FRACTION * disk.f_blocks * disk.f_frsize)
        return disk.f_bavail * disk.f_frsize >= reserve

    def _failed(self, error: OSError) -> None:
        if self.problem is None:
            self.problem = f"cannot write in {self.folder}: {error.strerror or error}"
            self._lost_before_problem = self.lost
            log.error("event log: %s; records are counted as lost until it can write again", self.problem)

    def _file(self, camera_id: str) -> _DayFile:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        current = self._files.get(camera_id)
        if current and current.day == day:
            return current
        if current:
            os.close(current.descriptor)
            del self._files[camera_id]
        path = self.folder / camera_id / f"{day}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._files[camera_id] = _DayFile(day, path, descriptor)
        return self._files[camera_id]


def _append_whole(descriptor: int, data: bytes) -> None:
    """Append all of `data` or, when the write fails part way (a full disk), cut the file back
    to where it was: readers never see half a line."""
    size_before = os.fstat(descriptor).st_size
    try:
        written = 0
        while written < len(data):
            written += os.write(descriptor, data[written:])
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, size_before)
        raise
