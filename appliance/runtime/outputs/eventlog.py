"""Local event log: per camera, daily JSON Lines files of sampled detections and every finished
violation episode (shapes from serialize.py), written durably, kept for a number of days and
within a disk budget."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.runtime.events import EpisodeEvent, Event, FrameResult
from appliance.runtime.outputs.base import Output
from appliance.runtime.serialize import Json, to_json

log = logging.getLogger(__name__)
SYNC_INTERVAL_S = 1.0
PRUNE_INTERVAL_S = 3600.0
RETRY_INTERVAL_S = 2.0
RESERVE_FRACTION, RESERVE_MAX_BYTES = 0.05, 64 * 1024 * 1024  # free space that counts as recovered


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

    def __init__(self, folder: Path, *, retention_days: int, max_disk_mb: int) -> None:
        self.folder = folder
        self.retention_days, self.max_bytes = retention_days, max_disk_mb * 1024 * 1024
        self._files: dict[str, _DayFile] = {}  # camera -> today's file
        self._last_sync = self._last_prune = 0.0
        self._lost_before_problem = 0
        self._last_retry = float("-inf")

    @classmethod
    def for_profile(cls, loaded: LoadedProfile) -> EventLog:
        settings = loaded.profile.storage.event_log
        return cls(event_log_folder(loaded), retention_days=settings.retention_days, max_disk_mb=settings.max_disk_mb)

    def start(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._failed(error)
        self.prune()

    def reconfigure(self, loaded: LoadedProfile) -> None:
        settings = loaded.profile.storage.event_log
        self.retention_days, self.max_bytes = settings.retention_days, settings.max_disk_mb * 1024 * 1024
        folder = event_log_folder(loaded)
        if folder != self.folder:
            self.close()
            log.info("event log: now in %s", folder)
            self.folder = folder
            self.start()
        else:
            self.prune()

    def handle(self, event: Event) -> None:
        if isinstance(event, FrameResult) and event.tracks is not None:
            self._write(event.camera_id, to_json(event))
        elif isinstance(event, EpisodeEvent) and event.kind == "ended":
            self._write(event.episode.camera_id, to_json(event), sync=True)
        self.idle()

    def idle(self) -> None:
        now = time.monotonic()
        if now - self._last_sync >= SYNC_INTERVAL_S:
            self.flush()
        if now - self._last_prune >= PRUNE_INTERVAL_S:
            self.prune()

    def flush(self) -> None:
        """Make everything written so far durable."""
        self._last_sync = time.monotonic()
        for file in self._files.values():
            try:
                os.fsync(file.descriptor)
            except OSError as error:
                self._failed(error)

    def close(self) -> None:
        self.flush()
        for file in self._files.values():
            os.close(file.descriptor)
        self._files.clear()

    def prune(self) -> None:
        """Delete files older than the retention, then the oldest beyond the disk budget."""
        self._last_prune = time.monotonic()
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
