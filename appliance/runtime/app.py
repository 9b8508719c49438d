"""The runtime's loop: the supervisor's workers feed the bus, the bus feeds the state and the
outputs, profile changes come in through one path, and one loop drives them all and talks to
systemd. Nothing on that loop waits for an output or for a profile load. Which outputs run is
the composition root's choice (appliance/app.py)."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tqdm.contrib.logging import logging_redirect_tqdm

from appliance.config import LoadedProfile, ProfileError, ProfileIssue, load_profile
from appliance.config.secrets import REDACTOR
from appliance.logs import configure_logging
from appliance.runtime.bus import EventBus
from appliance.runtime.changes import ChangeOutcome, ProfileChanges, ValidatedChange
from appliance.runtime.commands import Dispatcher, ReloadProfile
from appliance.runtime.console import Console
from appliance.runtime.events import ConfigChanged, Event, RunEvent
from appliance.runtime.outputs.base import Output
from appliance.runtime.outputs.eventlog import event_log_folder
from appliance.runtime.preflight import DataDirBusyError, DataDirLock, preflight
from appliance.runtime.processes import ChildSetup
from appliance.runtime.state import RuntimeState
from appliance.runtime.supervisor import Supervisor
from appliance.runtime.systemd import SystemdNotifier
from appliance.runtime.watcher import ProfileWatcher

log = logging.getLogger(__name__)
CLIENT_SOURCES = ("api", "mqtt")
TICK_S = 0.2
WATCHDOG_INTERVAL_S = 1.0  # systemd wants a keep-alive well within WatchdogSec (30 s in the unit)
EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class RuntimeServices:
    """What the runtime offers the outputs it is given: the running profile, the state to read,
    the dispatcher that executes commands, and a way to publish an event from any thread."""

    profile_path: Path
    loaded: LoadedProfile
    state: RuntimeState
    dispatcher: Dispatcher
    post: Callable[[Event], None]
    historical: bool


OutputsFactory = Callable[[RuntimeServices], Sequence[Output]]


class Runtime:
    def __init__(
        self,
        profile_path: Path,
        *,
        input_file: Path | None = None,
        input_start: float | None = None,
        log_level: str | None = None,
        outputs: OutputsFactory = lambda _services: (),
    ) -> None:
        """`input_start`: the Unix time of the input's first frame; `log_level` overrides the
        profile's logging.level; `outputs` makes the outputs from what the runtime offers them."""
        self.profile_path = profile_path
        self.input_file = input_file
        self.log_level = log_level
        self.loaded = load_profile(profile_path)
        if issues := preflight(self.loaded):
            raise ProfileError(issues)
        self.data_dir_lock = self._take_data_dir(self.loaded)
        self._configure_logging()
        self.state = RuntimeState(self.loaded)
        self.bus = EventBus(self.state)
        self._next_data_dir_lock: DataDirLock | None = None  # taken by a change's check, for _apply
        self.changes = ProfileChanges(profile_path, running=lambda: self.loaded, check=self._check_change)
        self.dispatcher = Dispatcher(self.changes, self._request_snapshot)
        services = RuntimeServices(profile_path, self.loaded, self.state, self.dispatcher, self.post,
                                   historical=input_file is not None)  # fmt: skip
        for output in outputs(services):
            self.bus.add(output)
        self.supervisor = Supervisor(self.loaded, self._child_setup(), self.bus.publish, input_file=input_file,
                                     input_start=input_start)  # fmt: skip
        self.console = Console(self.state, input_file)
        self.systemd = SystemdNotifier()
        self.watcher = ProfileWatcher(self._file_changed)
        self._posted: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._reload = threading.Event()
        self.run_id = uuid.uuid4().hex[:12]
        self._ready_sent = False
        self._last_watchdog = 0.0

    @property
    def historical(self) -> bool:
        return self.input_file is not None

    def run(self) -> int:
        """Run until SIGTERM or SIGINT (or, in historical mode, the end of the input)."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())
        self.bus.start()
        self.bus.publish(RunEvent("started", self.run_id, str(self.input_file) if self.input_file else None))
        log.info("run %s started", self.run_id)
        self.changes.start()
        if not self.historical:
            self.watcher.watch(self.loaded.files)
        self.supervisor.start()
        try:
            with logging_redirect_tqdm():  # log lines go above the progress bar
                self._loop()
        finally:
            self._shutdown()
        if self.historical and (failed := self.supervisor.given_up()):
            log.error("gave up on %s: the input was not processed to its end", ", ".join(failed))
            return EXIT_FAILED
        return EXIT_OK

    def _loop(self) -> None:
        while not self._stopping.is_set():
            for event in self.supervisor.drain(TICK_S, burst=True):
                self.bus.publish(event)
            while not self._posted.empty():
                self.bus.publish(self._posted.get())
            self.supervisor.supervise()
            if self._reload.is_set():
                self._reload.clear()
                self.dispatcher.execute(ReloadProfile("reload"))
            self.changes.apply_pending(self._apply)
            self.bus.hand_over()
            self._report()
            if self.historical and self.supervisor.done():
                return

    def _check_change(self, loaded: LoadedProfile) -> list[ProfileIssue]:
        """On the change path's thread, before anything is written: what `loaded` would meet on
        this machine, and the lock of its data folder when it moves there (kept for _apply)."""
        if issues := preflight(loaded, running=self.loaded):
            return issues
        if loaded.profile.storage.data_dir != self.loaded.profile.storage.data_dir:
            try:
                self._next_data_dir_lock = self._take_data_dir(loaded)
            except ProfileError as error:
                return list(error.issues)
        return []

    def _apply(self, change: ValidatedChange) -> ChangeOutcome:
        """On the loop: apply a validated change, or announce a rejected one."""
        generation, revision = self.state.snapshot().device.generation, change.revision
        next_lock, self._next_data_dir_lock = self._next_data_dir_lock, None
        if change.loaded is None or change.loaded.data == self.loaded.data:
            if next_lock is not None:
                next_lock.release()
            if change.loaded is None and not change.unchanged:
                return self._reject(change, generation, change.errors)
            log.debug("profile unchanged (%s)", change.source)
            return ChangeOutcome(True, generation, revision, unchanged=True)
        loaded = change.loaded
        if next_lock is not None:
            self.data_dir_lock.release()
            self.data_dir_lock = next_lock
        self.loaded = loaded
        if loaded.profile.logging != self.supervisor.profile.logging:
            self._configure_logging()
        cameras = self.supervisor.apply(loaded, self._child_setup())
        self.state.set_profile(loaded)
        outputs = tuple(self.bus.reconfigure(loaded))
        if not self.historical:
            self.watcher.watch(loaded.files)
        generation += 1
        parts = {"restarted": cameras.restarted, "reconfigured": cameras.reconfigured, "added": cameras.added,
                 "removed": cameras.removed}  # fmt: skip
        log.info(
            "profile change applied: %s", ", ".join(f"{what} {list(ids) or 'none'}" for what, ids in parts.items())
        )
        self.bus.publish(ConfigChanged("applied", generation, change.source, cameras.restarted, cameras.added,
                                       cameras.removed, reconfigured=cameras.reconfigured))  # fmt: skip
        return ChangeOutcome(True, generation, revision, cameras.restarted, cameras.added, cameras.removed,
                             reconfigured=cameras.reconfigured, outputs=outputs)  # fmt: skip

    def _reject(self, change: ValidatedChange, generation: int, issues: tuple[ProfileIssue, ...]) -> ChangeOutcome:
        errors = tuple(REDACTOR.redact(str(issue)) for issue in issues)
        log.log(_rejection_level(change), "profile change rejected, still running the previous one (from %s):\n%s",
                change.source, "\n".join(errors))  # fmt: skip
        self.bus.publish(ConfigChanged("rejected", generation, change.source, errors=errors))
        return ChangeOutcome(False, generation, change.revision, errors=issues, conflict=change.conflict,
                             refused=change.refused)  # fmt: skip

    @staticmethod
    def _take_data_dir(loaded: LoadedProfile) -> DataDirLock:
        """The data_dir, locked for this runtime alone."""
        lock = DataDirLock(Path(loaded.profile.storage.data_dir))
        try:
            lock.acquire()
        except (DataDirBusyError, OSError) as error:
            message = str(error) if isinstance(error, DataDirBusyError) else f"cannot lock: {error.strerror or error}"
            raise ProfileError([loaded.issue(("storage", "data_dir"), message)]) from None
        return lock

    def _report(self) -> None:
        """systemd readiness, watchdog and status; the console."""
        snapshot = self.state.snapshot()
        if not self._ready_sent and snapshot.ready:
            self._ready_sent = True
            self.systemd.notify(READY="1", STATUS="all cameras opened")
            log.info("ready: every camera is open")
        now = time.monotonic()
        if now - self._last_watchdog >= WATCHDOG_INTERVAL_S and self.supervisor.watchdog_ok():
            self._last_watchdog = now
            self.systemd.notify(WATCHDOG="1")
        if self.historical and self.loaded.profile.logging.format == "text":
            self.console.show_progress()  # a progress bar is for people; JSON logs are for collectors
        status = self.console.status(self.loaded.profile.runtime.status_interval_s)
        if status is not None:
            self.systemd.notify(STATUS=status)

    def _shutdown(self) -> None:
        self.systemd.notify(STOPPING="1")
        self.watcher.stop()
        self.changes.close()
        self.supervisor.stop()
        self.console.close()
        for camera_id in self.supervisor.workers:
            if summary := self.state.summary(camera_id):
                log.info(summary)
        totals = self.state.run_summary(str(event_log_folder(self.loaded)))
        self.bus.publish(RunEvent("ended", self.run_id, str(self.input_file) if self.input_file else None, totals))
        self.bus.hand_over()
        self.console.summary(self.run_id, totals)
        self.bus.close(self.loaded.profile.runtime.stop_timeout_s)
        self.data_dir_lock.release()
        log.info("stopped")

    def post(self, event: Event) -> None:
        """Publish `event` from any thread: the loop hands it to the state and the outputs."""
        self._posted.put(event)

    def _request_snapshot(self, camera_id: str) -> bool:
        return self.supervisor.request_snapshot(camera_id)

    def _file_changed(self) -> None:
        self.dispatcher.execute(ReloadProfile("file"))

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        self._stopping.set()

    def _configure_logging(self) -> None:
        settings = self.loaded.profile.logging
        configure_logging(self.log_level or settings.level, settings.format, secrets=self.loaded.secret_values)

    def _child_setup(self) -> ChildSetup:
        settings = self.loaded.profile.logging
        return ChildSetup.here(self.log_level or settings.level, settings.format, self.loaded.secret_values)


def _rejection_level(change: ValidatedChange) -> int:
    """A stale or invalid request from a client (the API, MQTT) is the client's mistake, answered
    with 412 or 422: worth a note, not an error. A broken profile file is the device's problem."""
    if change.conflict:
        return logging.INFO
    return logging.WARNING if change.source in CLIENT_SOURCES else logging.ERROR
