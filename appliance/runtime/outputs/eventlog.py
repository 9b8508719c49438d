"""Local event log: per camera, daily JSON Lines files of sampled detections and every finished
violation episode (shapes from serialize.py), written durably, kept for a number of days and
within a disk budget."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from appliance.config import LoadedProfile
from appliance.runtime.events import EpisodeEvent, Event, FrameResult
from appliance.runtime.outputs.base import Output
from appliance.runtime.serialize import Json, to_json

log = logging.getLogger(__name__)
SYNC_INTERVAL_S = 1.0
PRUNE_INTERVAL_S = 3600.0


def event_log_folder(loaded: LoadedProfile) -> Path:
    return Path(loaded.profile.storage.data_dir) / "events"


class EventLog(Output):
    name = "event_log"

    def __init__(self, folder: Path, *, retention_days: int, max_disk_mb: int) -> None:
        self.folder = folder
        self.retention_days, self.max_bytes = retention_days, max_disk_mb * 1024 * 1024
        self._files: dict[str, tuple[str, IO[str]]] = {}  # camera -> (day, open file)
        self._last_sync = self._last_prune = 0.0

    @classmethod
    def for_profile(cls, loaded: LoadedProfile) -> EventLog:
        settings = loaded.profile.storage.event_log
        return cls(event_log_folder(loaded), retention_days=settings.retention_days, max_disk_mb=settings.max_disk_mb)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
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
        for _, stream in self._files.values():
            stream.flush()
            os.fsync(stream.fileno())
        self._last_sync = time.monotonic()

    def close(self) -> None:
        self.flush()
        for _, stream in self._files.values():
            stream.close()
        self._files.clear()

    def prune(self) -> None:
        """Delete files older than the retention, then the oldest beyond the disk budget."""
        self._last_prune = time.monotonic()
        files = sorted(self.folder.glob("*/*.jsonl"), key=lambda p: p.name)
        cutoff = time.time() - self.retention_days * 86400
        open_files = {stream.name for _, stream in self._files.values()}
        for path in [p for p in files if p.stat().st_mtime < cutoff and str(p) not in open_files]:
            log.info("event log: removing %s (older than %d days)", path, self.retention_days)
            path.unlink()
            files.remove(path)
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self.max_bytes or str(path) in open_files:
                break
            total -= path.stat().st_size
            log.info("event log: removing %s (over %d MB)", path, self.max_bytes // (1024 * 1024))
            path.unlink()

    def _write(self, camera_id: str, record: Json, sync: bool = False) -> None:
        stream = self._stream(camera_id)
        stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        if sync:
            stream.flush()
            os.fsync(stream.fileno())

    def _stream(self, camera_id: str) -> IO[str]:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        current = self._files.get(camera_id)
        if current and current[0] == day:
            return current[1]
        if current:
            current[1].close()
        path = self.folder / camera_id / f"{day}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", encoding="utf-8")
        self._files[camera_id] = (day, stream)
        return stream
