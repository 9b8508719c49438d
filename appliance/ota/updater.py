"""The applier inside the runtime: it watches the inbox (inotify through `watchdog`, and a poll
in case inotify is unavailable or misses a rename), applies each bundle on its own thread through
the runtime's one profile-change path, and judges the health window from the runtime's state
and the workers' failures."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from appliance.config import LoadedProfile, ProfileIssue
from appliance.ota.applier import Applier
from appliance.runtime.commands import Dispatcher, ReplaceProfile
from appliance.runtime.events import CameraLifecycle, Event, FrameResult, UpdateResult, UpdateStatus, WorkerFailed
from appliance.runtime.outputs.base import Output
from appliance.runtime.preflight import DataDirBusyError, DataDirLock, preflight
from appliance.runtime.state import RuntimeState

log = logging.getLogger(__name__)
POLL_S = 10.0  # the inbox is also listed this often, whatever inotify says
SETTLE_S = 5.0  # a bundle is taken once it has not changed for this long
CHANGE_TIMEOUT_S = 300.0
PEOPLE_MEMORY_S = 300.0  # a camera that saw someone this recently must see someone after an update


def _unsettled_s(bundle: Path) -> float:
    """Seconds until `bundle` has been left unchanged for SETTLE_S: one copied in place without a
    rename is taken once its writer is done, not cut short."""
    try:
        changed = bundle.stat().st_mtime
    except OSError:
        return 0.0  # gone or unreadable: taking it says so
    return max(0.0, changed + SETTLE_S - time.time())


def take_state_dir(profile_path: Path, loaded: LoadedProfile) -> tuple[DataDirLock | None, bool]:
    """At the runtime's start, before it loads the profile for good: lock the OTA state folder
    and finish or undo an interrupted update. (lock or None when OTA is off, whether the profile
    file was restored)."""
    config = loaded.profile.ota
    if not config.enabled:
        return None, False
    if not config.trusted_keys:
        log.info("ota: no ota.trusted_keys, so no bundle could be trusted: updates are off")
        return None, False
    folder = Path(config.state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(folder)
    try:
        lock.acquire()
    except DataDirBusyError as error:
        log.error("ota: %s; updates are not applied by this runtime", error)
        return None, False
    result = Applier(profile_path, config, _NoHost()).recover()
    return lock, result is not None and result.outcome == "rolled_back"


class OtaUpdater(Output, FileSystemEventHandler):
    name = "ota"

    def __init__(
        self,
        profile_path: Path,
        loaded: LoadedProfile,
        state: RuntimeState,
        dispatcher: Dispatcher,
        publish: Callable[[Event], None],
        lock: DataDirLock | None,
    ) -> None:
        """`lock`: the OTA state folder's, from `take_state_dir`; the updater keeps and releases it."""
        self.profile_path = profile_path
        self.loaded = loaded
        self.state = state
        self.dispatcher = dispatcher
        self.publish = publish
        self.lock = lock
        self.active = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._failures: list[str] = []
        self._last_people: dict[str, float] = {}  # camera -> when it last saw someone (monotonic)
        self._started: dict[str, float] = {}  # camera -> when its worker last started (monotonic)
        self._applied_at = 0.0
        self._saw_people_before: set[str] = set()

    def start(self) -> None:
        config = self.loaded.profile.ota
        if self.lock is None:
            return
        self.applier = Applier(self.profile_path, config, self)
        self._publish_status(None)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ota", daemon=True)
        self._thread.start()
        self._watch(Path(config.inbox))
        self.active = True
        log.info("ota: watching %s for bundles (installed version %d)", config.inbox,
                 self.applier.slots.installed_version())  # fmt: skip

    def handle(self, event: Event) -> None:
        if isinstance(event, FrameResult) and event.people:
            self._last_people[event.camera_id] = time.monotonic()
        elif isinstance(event, WorkerFailed):
            self._failures.append(f"camera {event.camera_id}'s worker failed: {event.message}")
        elif isinstance(event, CameraLifecycle) and event.kind in ("worker_restarting", "camera_failed"):
            self._failures.append(f"camera {event.camera_id}: {event.kind.replace('_', ' ')} ({event.reason})")
        elif isinstance(event, CameraLifecycle) and event.kind == "worker_started":
            self._started[event.camera_id] = time.monotonic()

    def reconfigure(self, loaded: LoadedProfile) -> None:
        before, self.loaded = self.loaded.profile.ota, loaded
        if loaded.profile.ota == before:
            return
        log.info("ota: settings changed; the inbox watch restarts")
        self.close()
        self.lock, _ = take_state_dir(self.profile_path, loaded)
        self.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
        if self._thread is not None:
            self._thread.join(CHANGE_TIMEOUT_S)
            self._thread = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        self.active = False

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._wake.set()

    def check(self, loaded: LoadedProfile) -> list[ProfileIssue]:
        return preflight(loaded, running=self.state.loaded)

    def apply(self, text: str) -> list[str]:
        self._baseline = self.state.snapshot()
        self._failures.clear()
        self._applied_at = time.monotonic()
        recent = self._applied_at - PEOPLE_MEMORY_S
        self._saw_people_before = {camera for camera, when in self._last_people.items() if when > recent}
        outcome = self.dispatcher.execute(ReplaceProfile(text, source="ota")).result(CHANGE_TIMEOUT_S)
        return [str(issue) for issue in outcome.errors]

    def watch(self, seconds: float) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            if self._failures:
                return self._failures[0]
            time.sleep(0.5)
        return self._failures[0] if self._failures else self._unhealthy_camera(seconds)

    def _unhealthy_camera(self, seconds: float) -> str | None:
        now = self.state.snapshot()
        ratio = self.loaded.profile.ota.min_fps_ratio
        for camera_id, before in self._baseline.cameras.items():
            after = now.cameras.get(camera_id)
            if before.status != "online" or after is None or after.status == "disabled":
                continue
            if after.status != "online":
                return f"camera {camera_id} was online before the update and is {after.status} ({after.reason})"
            if after.fps < ratio * before.fps:
                return f"camera {camera_id} runs at {after.fps:.1f} FPS, below {ratio} of its {before.fps:.1f} before"
            since = max(self._applied_at, self._started.get(camera_id, 0.0))  # the new worker's frames only
            saw_after = self._last_people.get(camera_id, 0.0) > since
            if camera_id in self._saw_people_before and not saw_after:
                return f"camera {camera_id} saw people before the update and nobody in the {seconds:.0f} s after it"
        return None

    def _run(self) -> None:
        wait_s = POLL_S
        while not self._stop.is_set():
            self._wake.wait(wait_s)
            self._wake.clear()
            wait_s = POLL_S
            for bundle in self._waiting():
                if self._stop.is_set():
                    return
                if (unsettled_s := _unsettled_s(bundle)) > 0:  # still being written, perhaps
                    wait_s = min(wait_s, unsettled_s)
                    continue
                self._publish_status(bundle.name)
                try:
                    result = self.applier.process(bundle, self.state.loaded)
                except Exception:
                    log.exception("ota: applying %s failed", bundle.name)
                    continue
                self._publish_status(None, result)

    def _waiting(self) -> list[Path]:
        try:
            return self.applier.waiting()
        except OSError as error:
            log.error("ota: cannot list the inbox: %s", error)
            return []

    def _watch(self, inbox: Path) -> None:
        observer = Observer()
        try:
            observer.schedule(self, str(inbox), recursive=False)
            observer.start()
        except OSError as error:
            log.warning("ota: cannot watch %s (%s); looking every %.0f s instead", inbox, error, POLL_S)
            return
        self._observer = observer

    def _publish_status(self, in_progress: str | None, result: UpdateResult | None = None) -> None:
        history = self.applier.journal.history()
        last = history[-1] if history else None
        self.publish(UpdateStatus(self.applier.slots.installed_version(), in_progress, result, last))


class _NoHost:
    """Recovery changes no running profile: nothing runs yet."""

    def check(self, loaded: LoadedProfile) -> list[ProfileIssue]:
        return []

    def apply(self, text: str) -> list[str]:
        return []

    def watch(self, seconds: float) -> str | None:
        return None
