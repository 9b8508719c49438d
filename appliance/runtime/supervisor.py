"""The supervisor: one worker process per enabled camera, restarted when it dies or stalls,
reloaded camera by camera when the profile changes, stopped cleanly on SIGTERM."""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path
from types import FrameType

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from appliance.config import LoadedProfile, ProfileError, load_profile
from appliance.config.model import CameraConfig, Profile
from appliance.runtime.analysis.occupancy import CameraCounts, area_status
from appliance.runtime.detector_service import run_detector_service, uses_shared_detector
from appliance.runtime.events import (
    AreaUpdate,
    CameraStatus,
    Event,
    EventBus,
    FrameResult,
    SupervisorEvent,
    WorkerFailed,
)
from appliance.runtime.models import model_path_for
from appliance.runtime.outputs.eventlog import EventLog
from appliance.runtime.outputs.metrics import Metrics
from appliance.runtime.systemd import SystemdNotifier
from appliance.runtime.worker import WorkerSpec, run_worker

log = logging.getLogger(__name__)
TICK_S = 0.2


@dataclass
class Worker:
    """The supervisor's view of one camera's worker process."""

    camera: CameraConfig
    process: SpawnProcess | None = None
    stop: StopEvent | None = None
    last_seen: float = 0.0
    reported: bool = False  # has sent anything since it started
    online: bool = False
    finished: bool = False
    failed: bool = False
    restart_at: float | None = None
    failures: deque[float] = field(default_factory=deque)
    frames: int = 0
    counts: CameraCounts = field(default_factory=lambda: CameraCounts(0, 0))
    fps_window: deque[float] = field(default_factory=deque)
    progress: tuple[int, int] | None = None
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    detect_seconds: float = 0.0  # time in the detector over every frame after the first

    def summary(self) -> str | None:
        """Throughput over the whole run, against the detector's own."""
        if self.first_frame_at is None or self.last_frame_at is None or self.frames < 2:
            return None
        seconds = self.last_frame_at - self.first_frame_at
        fps = (self.frames - 1) / seconds if seconds > 0 else 0.0
        detector_fps = (self.frames - 1) / self.detect_seconds if self.detect_seconds > 0 else 0.0
        return (
            f"camera {self.camera.id}: {self.frames} frames in {seconds:.1f} s, {fps:.2f} fps; "
            f"the detector alone: {detector_fps:.2f} fps"
        )


class Supervisor:
    def __init__(self, profile_path: Path, *, input_file: Path | None = None, log_level: str = "INFO") -> None:
        self.profile_path = profile_path
        self.input_file = input_file
        self.log_level = log_level
        self.loaded: LoadedProfile = load_profile(profile_path)
        self.context = multiprocessing.get_context("spawn")
        self.events: Queue[Event] = self.context.Queue()
        self.bus = EventBus()
        self.workers: dict[str, Worker] = {}
        self.systemd = SystemdNotifier()
        self._stopping = threading.Event()
        self._reload = threading.Event()
        self._ready_sent = False
        self._last_status = 0.0
        self._progress: tqdm | None = None  # type: ignore[type-arg]
        profile = self.profile
        sha = profile.detector.model.sha256 or "none"
        self.metrics = Metrics(self.loaded.name, sha)
        data_dir = model_path_for(profile.storage.data_dir, self.loaded.path.resolve().parent)
        assert data_dir is not None
        event_log = profile.storage.event_log
        self.event_log = EventLog(
            data_dir / "events", retention_days=event_log.retention_days, max_disk_mb=event_log.max_disk_mb
        )
        self.bus.subscribe(self.metrics.handle)
        self.bus.subscribe(self.event_log.handle)
        self.data_dir = data_dir
        self.detector_service: SpawnProcess | None = None
        self._service_stop: StopEvent | None = None

    @property
    def profile(self) -> Profile:
        return self.loaded.profile

    @property
    def historical(self) -> bool:
        return self.input_file is not None

    def run(self) -> int:
        """Run until SIGTERM or SIGINT (or, in historical mode, the end of the input)."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())
        if self.profile.metrics.enabled:
            self.metrics.serve(self.profile.metrics.listen)
        observer = None if self.historical else self._watch_profile()
        self._start_detector_service()
        for camera in self._cameras(self.profile):
            self._start(Worker(camera))
        log.info("running %d camera(s): %s", len(self.workers), ", ".join(self.workers) or "none")
        try:
            with logging_redirect_tqdm():  # log lines go above the progress bar
                self._loop()
        finally:
            if observer is not None:
                observer.stop()
            self._shutdown()
        return 0

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._drain(TICK_S)
            self._supervise()
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            self._report()
            if self.historical and all(w.finished or w.failed for w in self.workers.values()):
                return

    def reload(self) -> None:
        """Apply a changed profile camera by camera; keep running on the old one if it is invalid."""
        try:
            loaded = load_profile(self.profile_path)
        except ProfileError as error:
            log.error("profile change rejected, still running the previous one:\n%s", error)
            self.bus.publish(SupervisorEvent("config_rejected", detail=str(error)))
            return
        old, new = self.profile, loaded.profile
        self.loaded = loaded
        everything = _shared_settings(old) != _shared_settings(new)
        old_cameras = {c.id: c for c in self._cameras(old)}
        new_cameras = {c.id: c for c in self._cameras(new)}
        changed = [i for i in new_cameras if i in old_cameras and (everything or new_cameras[i] != old_cameras[i])]
        removed = [i for i in old_cameras if i not in new_cameras]
        added = [i for i in new_cameras if i not in old_cameras]
        for camera_id in removed + changed:
            self._stop_worker(self.workers.pop(camera_id))
        if everything:
            self._stop_detector_service()
            self._start_detector_service()
        for camera_id in changed + added:
            self._start(Worker(new_cameras[camera_id]))
        summary = f"restarted {changed or 'none'}, added {added or 'none'}, removed {removed or 'none'}"
        log.info("profile change applied: %s", summary)
        self.bus.publish(SupervisorEvent("config_applied", detail=summary))

    def _cameras(self, profile: Profile) -> list[CameraConfig]:
        if self.input_file is not None:
            return list(profile.cameras[:1])  # historical mode: the first camera's settings
        return [c for c in profile.cameras if c.enabled]

    def _start(self, worker: Worker) -> None:
        camera = worker.camera
        spec = WorkerSpec(
            self.profile, camera.id, self.loaded.path.resolve().parent, realtime=not self.historical,
            source_override=str(self.input_file.resolve()) if self.input_file else None, log_level=self.log_level,
            detector_address=self._service_address() if self.detector_service else None,
        )  # fmt: skip
        worker.stop = self.context.Event()
        worker.process = self.context.Process(
            target=run_worker, args=(spec, self.events, worker.stop), name=f"camera-{camera.id}", daemon=True
        )
        worker.process.start()
        worker.last_seen, worker.restart_at, worker.reported = time.monotonic(), None, False
        self.workers[camera.id] = worker
        log.info("camera %s: worker started (pid %d)", camera.id, worker.process.pid)
        self.bus.publish(SupervisorEvent("worker_started", camera.id))

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            self._note(event)
            started = time.perf_counter()
            self.bus.publish(event)
            self.metrics.observe_publish(time.perf_counter() - started)

    def _note(self, event: Event) -> None:
        """Keep the worker's health and counts up to date from what it sends."""
        camera_id = getattr(event, "camera_id", None)
        worker = self.workers.get(camera_id) if camera_id else None
        if worker is None:
            return
        worker.last_seen, worker.reported = time.monotonic(), True
        if isinstance(event, FrameResult):
            worker.frames += 1
            if worker.first_frame_at is None:
                worker.first_frame_at = worker.last_seen
            else:
                worker.detect_seconds += event.stage_seconds.get("detect", 0.0)
            worker.last_frame_at = worker.last_seen
            worker.online = True
            worker.counts = CameraCounts(event.people, event.people_in_violation)
            worker.fps_window.append(time.monotonic())
            while worker.fps_window and worker.fps_window[-1] - worker.fps_window[0] > 5:
                worker.fps_window.popleft()
            self._publish_areas(worker.camera.id)
        elif isinstance(event, CameraStatus):
            worker.online, worker.finished, worker.progress = event.online, event.finished, event.progress
        elif isinstance(event, WorkerFailed):
            log.error("camera %s: %s", event.camera_id, event.message)

    def _publish_areas(self, camera_id: str) -> None:
        counts = {w.camera.id: w.counts for w in self.workers.values() if w.online}
        for area in self.profile.areas:
            if camera_id in area.cameras:
                self.bus.publish(AreaUpdate(area_status(area, counts)))

    def _service_address(self) -> str:
        return str(self.data_dir / "run" / "detector.sock")

    def _start_detector_service(self) -> None:
        """One detector process for every camera, when the accelerator can be opened only once."""
        if not uses_shared_detector(self.profile):
            return
        (self.data_dir / "run").mkdir(parents=True, exist_ok=True)
        self._service_stop = self.context.Event()
        args = (self.profile, self.loaded.path.resolve().parent, self._service_address(), self.data_dir / "engines")
        self.detector_service = self.context.Process(
            target=run_detector_service, args=(*args, self._service_stop), name="detector", daemon=True
        )
        self.detector_service.start()
        log.info("detector service started (pid %d), shared by every camera", self.detector_service.pid)

    def _stop_detector_service(self) -> None:
        if self.detector_service is None or self._service_stop is None:
            return
        self._service_stop.set()
        self.detector_service.join(self.profile.runtime.stop_timeout_s)
        if self.detector_service.is_alive():
            self.detector_service.kill()
            self.detector_service.join(5)
        self.detector_service = None

    def _supervise(self) -> None:
        now = time.monotonic()
        service = self.detector_service
        if service is not None and not service.is_alive():
            log.warning("detector service exited with code %s; starting it again", service.exitcode)
            self.detector_service = None
            self._start_detector_service()
        runtime = self.profile.runtime
        for worker in list(self.workers.values()):
            process = worker.process
            if worker.failed or worker.finished:
                continue
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    self._start(worker)
                continue
            assert process is not None
            if not process.is_alive():
                self._failed(worker, f"worker exited with code {process.exitcode}")
            elif now - worker.last_seen > (runtime.stall_timeout_s if worker.reported else runtime.start_timeout_s):
                log.warning(
                    "camera %s: no report for %.0f s, killing the worker", worker.camera.id, now - worker.last_seen
                )
                process.kill()
                process.join(5)
                self._failed(worker, "worker stalled")

    def _failed(self, worker: Worker, reason: str) -> None:
        runtime, now = self.profile.runtime, time.monotonic()
        worker.online = False
        worker.failures.append(now)
        while worker.failures and now - worker.failures[0] > runtime.failure_window_s:
            worker.failures.popleft()
        camera_id = worker.camera.id
        if len(worker.failures) >= runtime.max_failures:
            worker.failed = True
            log.error(
                "camera %s: %s; %d failures in %.0f s, giving up on it",
                camera_id,
                reason,
                len(worker.failures),
                runtime.failure_window_s,
            )
            self.bus.publish(SupervisorEvent("camera_failed", camera_id, reason))
            return
        delay = min(runtime.restart_max_s, runtime.restart_initial_s * 2 ** (len(worker.failures) - 1))
        worker.restart_at = now + delay
        log.warning("camera %s: %s; restarting in %.1f s", camera_id, reason, delay)
        self.bus.publish(SupervisorEvent("worker_restarting", camera_id, reason))

    def _report(self) -> None:
        """systemd readiness, watchdog and status; progress in historical mode."""
        now = time.monotonic()
        running = [w for w in self.workers.values() if not w.failed]
        if not self._ready_sent and all(w.online or w.failed or w.finished for w in self.workers.values()):
            self._ready_sent = True
            self.systemd.notify(READY="1", STATUS="all cameras opened")
            log.info("ready: every camera is open")
        if all(now - w.last_seen <= self.profile.runtime.stall_timeout_s for w in running if not w.finished):
            self.systemd.notify(WATCHDOG="1")
        if self.historical:
            self._show_progress()
        if now - self._last_status >= self.profile.runtime.status_interval_s:
            self._last_status = now
            status = "; ".join(self._camera_status(w) for w in self.workers.values())
            self.systemd.notify(STATUS=status)
            log.info("%s", status)

    def _camera_status(self, worker: Worker) -> str:
        window = worker.fps_window
        fps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 and window[-1] > window[0] else 0.0
        state = "failed" if worker.failed else "online" if worker.online else "offline"
        counts = worker.counts
        violating = counts.people_in_violation
        return f"{worker.camera.id}: {state}, {fps:.1f} fps, {counts.people} people, {violating} in violation"

    def _show_progress(self) -> None:
        worker = next(iter(self.workers.values()), None)
        if worker is None or worker.progress is None:
            return
        done, total = worker.progress
        if self._progress is None:
            self._progress = tqdm(total=total or None, unit="frame", desc=f"{self.input_file}", leave=True)
        self._progress.update(done - self._progress.n)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        self._stopping.set()

    def _stop_worker(self, worker: Worker) -> None:
        if worker.stop is not None:
            worker.stop.set()
        if worker.process is not None:
            worker.process.join(self.profile.runtime.stop_timeout_s)
            if worker.process.is_alive():
                log.warning("camera %s: worker did not stop in time, killing it", worker.camera.id)
                worker.process.kill()
                worker.process.join(5)

    def _shutdown(self) -> None:
        self.systemd.notify(STOPPING="1")
        deadline = time.monotonic() + self.profile.runtime.stop_timeout_s
        for worker in self.workers.values():
            if worker.stop is not None:
                worker.stop.set()
        for worker in self.workers.values():
            if worker.process is not None:
                while worker.process.is_alive() and time.monotonic() < deadline:
                    self._drain(0.05)  # keep the queue moving so workers can flush into it
                if worker.process.is_alive():
                    log.warning("camera %s: worker did not stop in time, killing it", worker.camera.id)
                    worker.process.kill()
                    worker.process.join(5)
        self._drain(0.2)
        self._stop_detector_service()
        if self._progress is not None:
            self._progress.close()
        for worker in self.workers.values():
            if summary := worker.summary():
                log.info(summary)
        self.event_log.close()
        log.info("stopped")

    def _watch_profile(self) -> Observer:  # type: ignore[valid-type]
        """Reload when any of the profile's files changes (editors replace files: watch folders)."""
        files = {f.resolve() for f in self.loaded.files}
        reload = self._reload

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                paths = {event.src_path, getattr(event, "dest_path", "")}
                if any(Path(str(p)).resolve() in files for p in paths if p):
                    reload.set()

        observer = Observer()
        for folder in {f.parent for f in files}:
            observer.schedule(Handler(), str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        return observer


def _shared_settings(profile: Profile) -> tuple[object, ...]:
    """Settings every worker uses: a change in them restarts every camera."""
    return (profile.detector, profile.tracker, profile.distancing, profile.storage.event_log, profile.anonymizer)
