"""The output interface, and the runner that keeps every output off the supervisor's loop.

An output (metrics, the event log, MQTT, the API's feeds) sees every event and may be slow: a
broker away, a disk flushing. Each runs on its own thread behind a bounded queue; when the queue
is full the event is dropped for that output alone and counted, so the supervisor never waits."""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from appliance.config import LoadedProfile
from appliance.runtime.events import Event

log = logging.getLogger(__name__)
DEFAULT_CAPACITY = 10_000  # events; minutes of every camera's frames
DROP_LOG_INTERVAL_S = 10.0


class Output(ABC):
    """One consumer of the event stream. Every method runs on the output's own thread."""

    name: ClassVar[str]
    capacity: ClassVar[int] = DEFAULT_CAPACITY  # events queued before they are dropped

    def start(self) -> None:  # noqa: B027 - most outputs have nothing to open
        """Open what the output needs (a server, a connection)."""

    @abstractmethod
    def handle(self, event: Event) -> None:
        """Take one event."""

    def reconfigure(self, loaded: LoadedProfile) -> None:  # noqa: B027 - not every output has settings
        """Apply a new profile: the profile-change path calls it after every applied change."""

    def idle(self) -> None:  # noqa: B027 - most outputs need no housekeeping
        """Called when no event came for a while: flush, reconnect, prune."""

    def close(self) -> None:  # noqa: B027 - most outputs hold nothing to release
        """Flush and release everything."""


@dataclass(frozen=True, slots=True)
class OutputStats:
    name: str
    queued: int
    handled: int
    dropped: int  # events the full queue turned away
    failures: int  # events the output raised on


class OutputRunner:
    """An output on its own thread, fed through a bounded queue."""

    IDLE_S: ClassVar[float] = 0.5

    def __init__(self, output: Output) -> None:
        self.output = output
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=output.capacity)
        self._pending: LoadedProfile | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"output-{output.name}", daemon=True)
        self._handled = self._dropped = self._failures = 0
        self._last_drop_log = float("-inf")

    @property
    def name(self) -> str:
        return self.output.name

    def start(self) -> None:
        self._thread.start()

    def offer(self, event: Event) -> None:
        """Queue the event; drop and count it if the output is too far behind."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
                self._last_drop_log = now
                log.warning("output %s is behind: dropping events (%d so far)", self.name, self._dropped)

    def reconfigure(self, loaded: LoadedProfile) -> None:
        """Hand a new profile to the output; it applies it before its next event."""
        self._pending = loaded

    def request_close(self) -> None:
        """Take no more events; finish what is queued, then release everything."""
        self._closing.set()

    def join(self, timeout: float) -> None:
        """Wait at most `timeout` for the output to finish after `request_close`."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("output %s did not finish in %.0f s; %d event(s) not handled", self.name, timeout,
                        self._queue.qsize())  # fmt: skip

    @property
    def stats(self) -> OutputStats:
        return OutputStats(self.name, self._queue.qsize(), self._handled, self._dropped, self._failures)

    def _run(self) -> None:
        self._call(self.output.start)
        while True:
            self._apply_pending()
            try:
                event = self._queue.get(timeout=self.IDLE_S)
            except queue.Empty:
                if self._closing.is_set():
                    break
                self._call(self.output.idle)
                continue
            try:
                self.output.handle(event)
            except Exception:
                self._failures += 1
                log.exception("output %s failed on %s", self.name, type(event).__name__)
            self._handled += 1
        self._call(self.output.close)

    def _apply_pending(self) -> None:
        loaded, self._pending = self._pending, None
        if loaded is not None:
            self._call(lambda: self.output.reconfigure(loaded))

    def _call(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            log.exception("output %s failed", self.name)
