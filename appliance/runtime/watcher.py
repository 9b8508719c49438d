"""Watches a profile's files (the profile and every file it extends) and calls back when one
changes. Editors replace files rather than write them, so the folders are watched. Only events
that change a file count: reading the profile (opened, closed without writing) must not look
like a change, or every reload would start another. A change counts once the files have been
quiet for a moment: an editor that writes in place truncates first, and an empty profile half
written is no change to apply."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

QUIET_S = 0.5
CHANGES = frozenset({EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_DELETED, EVENT_TYPE_CLOSED})


class ProfileWatcher(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self.files: frozenset[Path] = frozenset()
        self._observer: BaseObserver | None = None
        self._quiet: threading.Timer | None = None
        self._lock = threading.Lock()

    def watch(self, files: Iterable[Path]) -> None:
        """Watch these files from now on (a change may add or remove extended files)."""
        files = frozenset(f.resolve() for f in files)
        if files == self.files:
            return
        self._stop_observer()
        self.files = files
        observer = Observer()
        for folder in {f.parent for f in files}:
            observer.schedule(self, str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES:
            return
        paths = (event.src_path, getattr(event, "dest_path", ""))
        if any(Path(str(p)).resolve() in self.files for p in paths if p):
            with self._lock:
                if self._quiet is not None:
                    self._quiet.cancel()
                self._quiet = threading.Timer(QUIET_S, self.on_change)
                self._quiet.daemon = True
                self._quiet.start()

    def stop(self) -> None:
        with self._lock:
            if self._quiet is not None:
                self._quiet.cancel()
        self._stop_observer()

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
