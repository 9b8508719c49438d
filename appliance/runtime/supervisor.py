"""The supervisor: one worker process per enabled camera (and the detector service where one
is shared), each restarted with backoff when it dies or stalls, given up after too many
failures. When the profile changes, a worker whose source and detector stay takes the new
settings in place through its settings queue; only a new source restarts its camera, and only a
new detector restarts the detector and every camera. Process lifecycle and restart policy only:
what the workers report goes on to the bus untouched."""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.config.model import CameraConfig, Profile
from appliance.runtime.detectors.service import DetectorService, uses_shared_detector
from appliance.runtime.events import (
    CameraLifecycle,
    CameraStatus,
    EpisodeEvent,
    Event,
    WorkerEvent,
    WorkerFailed,
    ZoneVisitEvent,
)
from appliance.runtime.processes import ChildSetup
from appliance.runtime.tracking import detector_config_for
from appliance.runtime.worker import WorkerSpec, run_worker

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """One camera's worker process, as the supervisor sees it."""

    camera: CameraConfig
    process: SpawnProcess | None = None
    stop: StopEvent | None = None
    snapshot: StopEvent | None = None  # set: the worker sends its next frame as a snapshot
    settings: Queue[WorkerSpec] | None = None  # new settings, taken in place between frames
    last_seen: float = 0.0
    reported: bool = False  # has sent anything since it started
    finished: bool = False  # its file has ended
    failed: bool = False  # given up on
    restart_at: float | None = None
    failures: list[float] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return not (self.failed or self.finished or self.restart_at is not None)


@dataclass(frozen=True)
class CameraChanges:
    restarted: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    reconfigured: tuple[str, ...] = ()  # new settings taken in place, without a restart


class Supervisor:
    def __init__(
        self,
        loaded: LoadedProfile,
        child_setup: ChildSetup,
        publish: Callable[[Event], None],
        *,
        input_file: Path | None = None,
        input_start: float | None = None,
    ) -> None:
        self.loaded = loaded
        self.input_start = input_start
        self.child_setup = child_setup
        self.publish = publish
        self.input_file = input_file
        self.context = multiprocessing.get_context("spawn")
        self.events: Queue[WorkerEvent] = self.context.Queue()
        self.workers: dict[str, Worker] = {}
        self.detector: DetectorService | None = None

    @property
    def profile(self) -> Profile:
        return self.loaded.profile

    def start(self) -> None:
        self._start_detector_service()
        for camera in self._cameras(self.profile):
            self._start(Worker(camera))
        log.info("running %d camera(s): %s", len(self.workers), ", ".join(self.workers) or "none")

    def drain(self, timeout: float, *, burst: bool = False) -> Iterator[WorkerEvent]:
        """The workers' events for up to `timeout`, noting who is alive as they come; with `burst`,
        only until the queue is empty once an event came (so results move on at once)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            worker = self.workers.get(_camera_of(event))
            if worker is not None:
                worker.last_seen, worker.reported = time.monotonic(), True
                if isinstance(event, CameraStatus) and event.finished:
                    worker.finished = True
                elif isinstance(event, WorkerFailed):
                    log.error("camera %s: %s", event.camera_id, event.message)
            yield event
            if burst and self.events.empty():
                return

    def request_snapshot(self, camera_id: str) -> bool:
        """Ask a running camera for a snapshot of its next frame (from any thread); False when
        the camera does not run."""
        worker = self.workers.get(camera_id)
        if worker is None or worker.snapshot is None or not worker.running:
            return False
        worker.snapshot.set()
        return True

    def supervise(self) -> None:
        """Restart what died or stalled, when its backoff is over."""
        now = time.monotonic()
        self._supervise_detector_service()
        for worker in list(self.workers.values()):
            if worker.failed or worker.finished:
                continue
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    self._start(worker)
                continue
            assert worker.process is not None
            if not worker.process.is_alive():
                self._failed(worker, f"worker exited with code {worker.process.exitcode}")
            elif now - worker.last_seen > self._patience(worker.reported):
                log.warning("camera %s: no report for %.0f s, killing the worker", worker.camera.id,
                            now - worker.last_seen)  # fmt: skip
                worker.process.kill()
                worker.process.join(5)
                self._failed(worker, "worker stalled")

    def apply(self, loaded: LoadedProfile, child_setup: ChildSetup) -> CameraChanges:
        """Move to a new profile: restart the cameras whose source changed (every camera when the
        detector changed), hand the others their new settings in place, start new cameras and
        stop removed ones."""
        old, new = self.profile, loaded.profile
        old_setup, self.loaded, self.child_setup = self.child_setup, loaded, child_setup
        new_detector = _detector_settings(old) != _detector_settings(new)
        old_cameras = {c.id: c for c in self._cameras(old)}
        new_cameras = {c.id: c for c in self._cameras(new)}
        kept = [i for i in new_cameras if i in old_cameras]
        restarted = [i for i in kept if new_detector or _source(new_cameras[i]) != _source(old_cameras[i])]
        removed = [i for i in old_cameras if i not in new_cameras]
        added = [i for i in new_cameras if i not in old_cameras]
        retuned = [i for i in kept if i not in restarted and (old_setup != child_setup
                   or _worker_settings(old, old_cameras[i]) != _worker_settings(new, new_cameras[i]))]  # fmt: skip
        restarted += [i for i in retuned if self.workers[i].failed]  # a new setting is a new chance
        reconfigured = [i for i in retuned if i not in restarted]
        self._stop_workers([self.workers.pop(camera_id) for camera_id in removed + restarted])
        for camera_id in removed:
            self.publish(CameraLifecycle("camera_stopped", camera_id))
        if new_detector:
            self._stop_detector_service()
            self._start_detector_service()
        for camera_id in restarted + added:
            self._start(Worker(new_cameras[camera_id]))
        for camera_id in reconfigured:
            self._reconfigure(self.workers[camera_id], new_cameras[camera_id])
        return CameraChanges(tuple(restarted), tuple(added), tuple(removed), tuple(reconfigured))

    def watchdog_ok(self) -> bool:
        """Every running worker has reported recently."""
        now, timeout = time.monotonic(), self.profile.runtime.stall_timeout_s
        return all(now - w.last_seen <= timeout for w in self.workers.values() if w.running)

    def done(self) -> bool:
        """Historical mode: every camera finished its file or was given up."""
        return all(w.finished or w.failed for w in self.workers.values())

    def given_up(self) -> list[str]:
        """The cameras given up on after too many failures."""
        return [camera_id for camera_id, worker in self.workers.items() if worker.failed]

    def stop(self) -> None:
        """Stop every worker and the detector service."""
        self._stop_workers(list(self.workers.values()))
        for event in self.drain(0.2):
            self.publish(event)
        self._stop_detector_service()

    def _patience(self, reported: bool) -> float:
        runtime = self.profile.runtime
        return runtime.stall_timeout_s if reported else runtime.start_timeout_s

    def _cameras(self, profile: Profile) -> list[CameraConfig]:
        if self.input_file is not None:
            return list(profile.cameras[:1])  # historical mode: the first camera's settings
        return [c for c in profile.cameras if c.enabled]

    def _spec(self, camera: CameraConfig) -> WorkerSpec:
        return WorkerSpec(
            self.profile, camera.id, self.child_setup, realtime=self.input_file is None,
            source_override=str(self.input_file.resolve()) if self.input_file else None, source_start=self.input_start,
            detector_address=self.detector.address if self.detector else None,
        )  # fmt: skip

    def _start(self, worker: Worker) -> None:
        camera = worker.camera
        worker.stop, worker.snapshot, worker.settings = self.context.Event(), self.context.Event(), self.context.Queue()
        worker.process = self.context.Process(
            target=run_worker,
            args=(self._spec(camera), self.events, worker.stop, worker.snapshot, worker.settings),
            name=f"camera-{camera.id}",
            daemon=True,
        )
        worker.process.start()
        worker.last_seen, worker.restart_at, worker.reported = time.monotonic(), None, False
        self.workers[camera.id] = worker
        log.info("camera %s: worker started (pid %d)", camera.id, worker.process.pid)
        self.publish(CameraLifecycle("worker_started", camera.id))

    def _reconfigure(self, worker: Worker, camera: CameraConfig) -> None:
        """Hand a worker its new settings; one waiting for its restart takes them when it starts."""
        worker.camera = camera
        if worker.running and worker.settings is not None:
            worker.settings.put(self._spec(camera))
            log.info("camera %s: new settings sent to the worker (pid %s)", camera.id,
                     worker.process.pid if worker.process else "?")  # fmt: skip

    def _failed(self, worker: Worker, reason: str) -> None:
        runtime, now = self.profile.runtime, time.monotonic()
        worker.failures = [t for t in worker.failures if now - t <= runtime.failure_window_s] + [now]
        camera_id, count = worker.camera.id, len(worker.failures)
        if count >= runtime.max_failures:
            worker.failed = True
            log.error("camera %s: %s; %d failures in %.0f s, giving up on it", camera_id, reason, count,
                      runtime.failure_window_s)  # fmt: skip
            self.publish(CameraLifecycle("camera_failed", camera_id, reason))
            return
        delay = min(runtime.restart_max_s, runtime.restart_initial_s * 2 ** (count - 1))
        worker.restart_at = now + delay
        log.warning("camera %s: %s; restarting in %.1f s", camera_id, reason, delay)
        self.publish(CameraLifecycle("worker_restarting", camera_id, reason))

    def _stop_workers(self, workers: list[Worker]) -> None:
        """Ask the workers to stop, all at once, and pass on what they flush meanwhile; kill those
        still running after `runtime.stop_timeout_s`."""
        deadline = time.monotonic() + self.profile.runtime.stop_timeout_s
        for worker in workers:
            if worker.stop is not None:
                worker.stop.set()
        for worker in workers:
            process = worker.process
            if process is None:
                continue
            while process.is_alive() and time.monotonic() < deadline:
                for event in self.drain(0.05):  # keep the queue moving so workers can flush into it
                    self.publish(event)
            if process.is_alive():
                log.warning("camera %s: worker did not stop in time, killing it", worker.camera.id)
                process.kill()
                process.join(5)

    def _start_detector_service(self) -> None:
        """One detector process for every camera, when the accelerator can be opened only once."""
        if uses_shared_detector(self.profile):
            run_dir = Path(self.profile.storage.data_dir) / "run"
            self.detector = DetectorService(self.context, self.profile, self.child_setup, run_dir)
            self.detector.start()

    def _supervise_detector_service(self) -> None:
        service, runtime = self.detector, self.profile.runtime
        if service is None:
            return
        problem = service.problem(stall_timeout_s=runtime.stall_timeout_s, start_timeout_s=runtime.start_timeout_s)
        if problem is not None:
            log.warning("detector service %s; starting it again", problem)
            service.stop(timeout=0)
            self._start_detector_service()

    def _stop_detector_service(self) -> None:
        if self.detector is not None:
            self.detector.stop(self.profile.runtime.stop_timeout_s)
            self.detector = None


def _camera_of(event: WorkerEvent) -> str:
    match event:
        case EpisodeEvent():
            return event.episode.camera_id
        case ZoneVisitEvent():
            return event.visit.camera_id
    return event.camera_id


def _detector_settings(profile: Profile) -> tuple[object, ...]:
    """What a detector is made of (model, backend, input size, the scores it keeps, shared or
    per camera, where it caches engines): a change restarts the detector and every camera."""
    return detector_config_for(profile), uses_shared_detector(profile), profile.storage.data_dir


def _source(camera: CameraConfig) -> tuple[object, ...]:
    """What a camera's source is opened with: a change restarts that camera."""
    return camera.source, camera.fps_cap, camera.resolution


def _worker_settings(profile: Profile, camera: CameraConfig) -> tuple[object, ...]:
    """What else a worker reads, all of it taken in place. Of the storage settings a worker reads
    only the detections' sampling interval; the event log's retention and size are the event
    log's alone."""
    return (camera, profile.tracker, profile.motion, profile.distancing, profile.detector.min_score,
            profile.anonymizer, profile.masks, profile.storage.event_log.sample_interval_s)  # fmt: skip
