"""The output interface, and the runner that keeps every output off the supervisor's loop.

An output (metrics, the event log, MQTT, the API's feeds) sees every event and may be slow: a
broker away, a disk flushing. Each runs on its own thread behind a bounded backlog; when the
backlog is full the event is dropped for that output alone and counted, so the supervisor never
waits. The loop hands events over in one batch per tick, so an output thread wakes a few times a
second, not once per event."""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from appliance.config import LoadedProfile
from appliance.runtime.events import Event
from appliance.runtime.state import OutputStats

log = logging.getLogger(__name__)
DEFAULT_CAPACITY = 10_000  # events; minutes of every camera's frames
DROP_LOG_INTERVAL_S = 10.0
FAILURE_LOG_INTERVAL_S = 60.0


class Output(ABC):
    """One consumer of the event stream. Every method runs on the output's own thread."""

    name: ClassVar[str]
    capacity: ClassVar[int] = DEFAULT_CAPACITY  # events queued before they are dropped
    problem: str | None = None  # why the output cannot do its job now (a full disk, a broker away)
    lost: int = 0  # events it took but could not deliver
    delivered: int = 0  # events a remote end acknowledged (outputs that deliver somewhere)
    spooled: int = 0  # events waiting on disk for their delivery
    active: bool = True  # False while the profile turns the output off
    idle_after_s: float = 0.5  # `idle` is called when no event came for this long

    def start(self) -> None:  # noqa: B027 - most outputs have nothing to open
        """Open what the output needs (a server, a connection)."""

    @abstractmethod
    def handle(self, event: Event) -> None:
        """Take one event."""

    def wants(self, event: Event) -> bool:
        """Whether `handle` has any use for the event; asked on the supervisor's loop, so it must be
        cheap. An output that needs few events leaves its thread asleep for the rest."""
        return True

    def reconfigure(self, loaded: LoadedProfile) -> None:  # noqa: B027 - not every output has settings
        """Apply a new profile: the profile-change path calls it after every applied change."""

    def idle(self) -> None:  # noqa: B027 - most outputs need no housekeeping
        """Called when no event came for `idle_after_s`: flush, reconnect, prune."""

    def close(self) -> None:  # noqa: B027 - most outputs hold nothing to release
        """Flush and release everything."""

    def parts(self) -> tuple[OutputStats, ...]:
        """The ends an output delivers to, each reported as an output of its own (a notification
        channel, an S3 bucket); called from other threads."""
        return ()


class OutputRunner:
    """An output on its own thread, fed batches of events through a bounded backlog."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self._batches: queue.SimpleQueue[list[Event]] = queue.SimpleQueue()
        self._batch: list[Event] = []  # gathered on the supervisor's loop until `hand_over`
        self._backlog = 0  # events handed over and not handled yet
        self._lock = threading.Lock()
        self._pending: LoadedProfile | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"output-{output.name}", daemon=True)
        self._handled = self._dropped = self._failures = 0
        self._last_drop_log = self._last_failure_log = float("-inf")

    @property
    def name(self) -> str:
        return self.output.name

    def start(self) -> None:
        self._thread.start()

    def offer(self, event: Event) -> None:
        """Take the event for the next batch; drop and count it if the output is too far behind."""
        if not self.output.wants(event):
            return
        if self._backlog + len(self._batch) < self.output.capacity:
            self._batch.append(event)
            return
        self._dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning("output %s is behind: dropping events (%d so far)", self.name, self._dropped)

    def hand_over(self) -> None:
        """Pass the events offered since the last call to the output's thread."""
        if self._batch:
            batch, self._batch = self._batch, []
            with self._lock:
                self._backlog += len(batch)
            self._batches.put(batch)

    def reconfigure(self, loaded: LoadedProfile) -> None:
        """Hand a new profile to the output; it applies it before its next batch."""
        self._pending = loaded

    def request_close(self) -> None:
        """Take no more events; finish what is handed over, then release everything."""
        self.hand_over()
        self._closing.set()

    def join(self, timeout: float) -> None:
        """Wait at most `timeout` for the output to finish after `request_close`."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("output %s did not finish in %.0f s; %d event(s) not handled", self.name, timeout,
                        self._backlog)  # fmt: skip

    @property
    def stats(self) -> OutputStats:
        output = self.output
        queued = self._backlog + len(self._batch)
        return OutputStats(
            self.name, queued, self._handled, self._dropped, self._failures, output.lost, output.problem,
            output.delivered, output.spooled, output.active,
        )  # fmt: skip

    def _run(self) -> None:
        self._call(self.output.start)
        while True:
            self._apply_pending()
            try:
                batch = self._batches.get(timeout=self.output.idle_after_s)
            except queue.Empty:
                if self._closing.is_set():
                    break
                self._call(self.output.idle)
                continue
            for event in batch:
                self._handle(event)
        self._call(self.output.close)

    def _handle(self, event: Event) -> None:
        try:
            self.output.handle(event)
        except Exception:
            self._failures += 1
            now = time.monotonic()
            if now - self._last_failure_log >= FAILURE_LOG_INTERVAL_S:  # one traceback, not one per event
                self._last_failure_log = now
                log.exception("output %s failed on %s (%d failures so far)", self.name, type(event).__name__,
                              self._failures)  # fmt: skip
        self._handled += 1
        with self._lock:
            self._backlog -= 1

    def _apply_pending(self) -> None:
        loaded, self._pending = self._pending, None
        if loaded is not None:
            self._call(lambda: self.output.reconfigure(loaded))

    def _call(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            log.exception("output %s failed", self.name)
