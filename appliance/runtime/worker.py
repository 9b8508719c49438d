"""A camera worker: one process per camera that reads frames, detects, tracks and analyses,
and reports to the supervisor through a queue. A crash or a hung decoder here stops only
this camera."""

from __future__ import annotations

import logging
import queue
import resource
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path

import cv2

from appliance.config.model import AnonymizerFacesConfig, MasksConfig, Profile
from appliance.logs import configure_logging
from appliance.models import ModelError
from appliance.runtime.analysis.analyzer import CameraAnalyzer, FrameAnalysis
from appliance.runtime.analysis.anonymizer import anonymize, boxes_to_hide
from appliance.runtime.analysis.motion import MotionGate
from appliance.runtime.analysis.places import PlacesFrame
from appliance.runtime.detectors import Detector, DetectorError, create_detector
from appliance.runtime.detectors.remote import RemoteDetector
from appliance.runtime.events import (
    CameraStatus,
    EpisodeEvent,
    FrameResult,
    FrameTally,
    MaskMinute,
    Snapshot,
    TrackRecord,
    WorkerEvent,
    WorkerFailed,
)
from appliance.runtime.faces import FaceDetector, FaceDetectorError, create_face_detector
from appliance.runtime.faces.masks import MaskJudge, MaskMinutes
from appliance.runtime.processes import ChildSetup, start_child
from appliance.runtime.sources import FileSource, FrameSource, SourceError, open_source
from appliance.runtime.tracking import detector_config_for
from appliance.runtime.types import Box, Detection, Image

log = logging.getLogger(__name__)
HEARTBEAT_S = 1.0
READ_TIMEOUT_S = 0.5
EXIT_FAILED = 3
SNAPSHOT_QUALITY = 85


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs; picklable."""

    profile: Profile  # paths in it are absolute
    camera_id: str
    setup: ChildSetup
    realtime: bool = True  # files at their own rate; False: as fast as possible (historical mode)
    source_override: str | None = None  # historical mode: this file instead of the camera's source
    source_start: float | None = None  # historical mode: the Unix time of the file's first frame
    detector_address: str | None = None  # the shared detector service's socket, when there is one


def run_worker(
    spec: WorkerSpec, events: Queue[WorkerEvent], stop: StopEvent, snapshot: StopEvent, settings: Queue[WorkerSpec]
) -> None:
    """Process entry point: run the camera until `stop` is set or its file ends; send a snapshot
    of the next frame each time `snapshot` is set; take each spec that comes on `settings` in
    place (same source and detector, new analysis, anonymizer, storage and logging settings)."""
    start_child(spec.camera_id, spec.setup, stop)
    try:
        CameraWorker(spec, events, stop, snapshot, settings).run()
    except (DetectorError, FaceDetectorError, ModelError, SourceError) as error:
        events.put(WorkerFailed(spec.camera_id, str(error)))
        events.close()
        events.join_thread()
        raise SystemExit(EXIT_FAILED) from None
    events.close()
    events.join_thread()


class CameraWorker:
    def __init__(
        self,
        spec: WorkerSpec,
        events: Queue[WorkerEvent],
        stop: StopEvent,
        snapshot: StopEvent | None = None,
        settings: Queue[WorkerSpec] | None = None,
    ) -> None:
        profile = spec.profile
        camera = profile.camera(spec.camera_id)
        self.camera_id, self.setup = camera.id, spec.setup
        self.events, self.stop, self.snapshot, self.settings = events, stop, snapshot, settings
        self.anonymizer = profile.anonymizer
        self.faces = _face_detector(profile.anonymizer.faces)
        self.masks_config = profile.masks
        self.masks = _mask_judge(profile.masks)
        self.mask_minutes = MaskMinutes(camera.id)
        self.sample_interval_s = profile.storage.event_log.sample_interval_s
        self.detector: Detector | RemoteDetector = (
            RemoteDetector(spec.detector_address)
            if spec.detector_address
            else create_detector(detector_config_for(profile), cache_dir=Path(profile.storage.data_dir) / "engines")
        )
        self.analyzer = CameraAnalyzer(profile, camera.id)
        self.gate = MotionGate(profile.motion) if profile.motion.enabled else None
        self._detections: list[Detection] = []  # the last frame's, which a frame without motion reuses
        self._motion_skipped = 0
        self.source: FrameSource = open_source(
            camera.id, spec.source_override or camera.source, realtime=spec.realtime,
            fps_cap=camera.fps_cap, resolution=camera.resolution, start_time=spec.source_start,
        )  # fmt: skip
        self._last_sample = float("-inf")
        self._tally: FrameTally | None = None  # the frames since the last sample
        self._last_heartbeat = 0.0

    def run(self) -> None:
        self.source.start()
        try:
            while not self.stop.is_set():
                self._take_settings()
                if not self._step():
                    break
                self._heartbeat()
        finally:
            episodes, places = self.analyzer.finish()
            for episode in episodes:
                self.events.put(EpisodeEvent(episode, "ended"))
            self._put_places(places)
            self._put_masks(self.mask_minutes.finish())
            self._heartbeat(force=True)
            self.source.stop()
            self.detector.close()
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            log.info("worker stopped; peak memory %.0f MB", peak_mb)

    def _take_settings(self) -> None:
        """Apply the latest spec the supervisor sent, if any, between two frames."""
        spec = None
        while self.settings is not None and not self.settings.empty():
            try:
                spec = self.settings.get_nowait()
            except queue.Empty:
                break
        if spec is None:
            return
        profile = spec.profile
        if spec.setup != self.setup:
            self.setup = spec.setup
            configure_logging(spec.setup.level, spec.setup.log_format, process=self.camera_id,
                              secrets=spec.setup.secrets)  # fmt: skip
        if profile.anonymizer.faces != self.anonymizer.faces:
            self.faces = _face_detector(profile.anonymizer.faces)
        if profile.masks != self.masks_config:
            self._put_masks(self.mask_minutes.finish())
            self.masks_config, self.masks = profile.masks, _mask_judge(profile.masks)
        self.anonymizer = profile.anonymizer
        self.sample_interval_s = profile.storage.event_log.sample_interval_s
        if profile.motion != (self.gate.config if self.gate else None):
            self.gate = MotionGate(profile.motion) if profile.motion.enabled else None
        self.analyzer.configure(profile)
        log.info("new settings applied in place")

    def _step(self) -> bool:
        """Process one frame if one comes; False once a file has ended."""
        started = time.perf_counter()
        frame = self.source.read(READ_TIMEOUT_S)
        read = time.perf_counter()
        if frame is None:
            return not self.source.status.finished
        snapshot_asked = self.snapshot is not None and self.snapshot.is_set()  # an image leaves: always detect
        queued = 0.0
        if self.gate is None or self.gate.needs_detection(frame.image, frame.timestamp, force=snapshot_asked):
            self._detections = self.detector.detect(frame.image)
            queued = self.detector.queued_seconds
        else:
            self._motion_skipped += 1
        detections = self._detections
        detected = time.perf_counter()
        analysis = self.analyzer.process(frame.timestamp, detections)
        stages = {"wait": read - started, "decode": frame.decode_seconds, "queue": queued,
                  "detect": detected - read - queued, **self.analyzer.stage_seconds}  # fmt: skip
        people, violating = len(analysis.tracks), len(analysis.people_in_violation)
        self._tally = _add(self._tally, people, violating)
        sampled = self._sample(frame.timestamp, analysis)
        tally, self._tally = (self._tally, None) if sampled is not None else (None, self._tally)
        self.events.put(
            FrameResult(self.camera_id, frame.index, frame.timestamp, people, violating, stages, sampled,
                        analysis.places.zones, tally)
        )  # fmt: skip
        if snapshot_asked and self.snapshot is not None:
            self.snapshot.clear()
            possible = boxes_to_hide(detections, self.analyzer.tracker.possible_people(), self.anonymizer.min_score)
            if (snapshot := self._snapshot(frame.image, frame.timestamp, possible)) is not None:
                self.events.put(snapshot)
        for episode in analysis.episodes_started:
            self.events.put(EpisodeEvent(episode, "started"))
        for episode in analysis.episodes_ended:
            self.events.put(EpisodeEvent(episode, "ended"))
        self._put_places(analysis.places)
        if self.masks is not None:
            verdicts = self.masks.judge(frame.image, frame.timestamp, analysis.tracks)
            self._put_masks(self.mask_minutes.add(frame.timestamp, verdicts, self.analyzer.places.zones_of_people()))
        return True

    def _put_masks(self, minute: MaskMinute | None) -> None:
        if minute is not None:
            self.events.put(minute)

    def _put_places(self, places: PlacesFrame) -> None:
        events: list[WorkerEvent] = [*places.crossings, *places.visits]
        for event in events:
            self.events.put(event)

    def _snapshot(self, image: Image, timestamp: float, people: list[Box]) -> Snapshot | None:
        """The frame as JPEG with every head that might be in it hidden, and every face the face
        detector finds. Only a frame the detectors have processed gets here: when the person or
        the face detector fails, no image of it leaves."""
        try:
            faces = [face.box for face in self.faces.detect(image)] if self.faces else []
        except (cv2.error, FaceDetectorError) as error:
            log.error("no snapshot: the face detector failed on the frame: %s", error)
            return None
        hidden = anonymize(image, people, self.anonymizer, faces)
        ok, jpeg = cv2.imencode(".jpg", hidden, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY])
        height, width = image.shape[:2]
        return Snapshot(self.camera_id, timestamp, jpeg.tobytes() if ok else b"", width, height)

    def _sample(self, timestamp: float, analysis: FrameAnalysis) -> tuple[TrackRecord, ...] | None:
        if timestamp - self._last_sample < self.sample_interval_s:
            return None
        self._last_sample = timestamp
        violating = analysis.people_in_violation
        return tuple(TrackRecord(t.track_id, t.box, t.score, t.track_id in violating) for t in analysis.tracks)

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        status = self.source.status
        progress = self.source.progress if isinstance(self.source, FileSource) else None
        self.events.put(
            CameraStatus(
                self.camera_id, status.online, status.error, status.frames, status.dropped,
                status.reconnects, status.finished, progress, skipped=status.skipped,
                motion_skipped=self._motion_skipped,
            )
        )  # fmt: skip


def _face_detector(config: AnonymizerFacesConfig) -> FaceDetector | None:
    return create_face_detector(config.model, config.min_score) if config.enabled else None


def _mask_judge(config: MasksConfig) -> MaskJudge | None:
    if not config.enabled:
        return None
    return MaskJudge(config, create_face_detector(config.model, config.min_score, key="masks.model"))


def _add(tally: FrameTally | None, people: int, violating: int) -> FrameTally:
    if tally is None:
        return FrameTally(1, people, people, violating, violating)
    return FrameTally(tally.frames + 1, tally.people_sum + people, max(tally.people_max, people),
                      tally.in_violation_sum + violating, max(tally.in_violation_max, violating))  # fmt: skip
