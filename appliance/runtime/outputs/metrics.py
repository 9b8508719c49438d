"""Prometheus metrics from the event stream; low-cardinality labels only (camera, area, stage)."""

from __future__ import annotations

import logging
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from appliance import __version__
from appliance.runtime.events import (
    AreaUpdate,
    CameraStatus,
    EpisodeEvent,
    Event,
    FrameResult,
    SupervisorEvent,
)

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FPS_WINDOW_S = 5.0


class Metrics:
    def __init__(self, profile_name: str, model_sha256: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter("appliance_frames_processed", "Frames processed", ["camera"], registry=r)
        self.dropped = Counter(
            "appliance_frames_dropped", "Live frames replaced before they were read", ["camera"], registry=r
        )
        self.latency = Histogram(
            "appliance_stage_latency_seconds",
            "Time per frame in each stage",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fps = Gauge("appliance_camera_fps", "Frames processed per second", ["camera"], registry=r)
        self.people = Gauge("appliance_people", "People in view", ["camera"], registry=r)
        self.violating = Gauge(
            "appliance_people_in_violation", "People closer than the threshold to someone", ["camera"], registry=r
        )
        self.episodes = Counter("appliance_violation_episodes", "Violation episodes started", ["camera"], registry=r)
        self.area_people = Gauge("appliance_area_people", "People in the area", ["area"], registry=r)
        self.area_violating = Gauge(
            "appliance_area_people_in_violation", "People in violation in the area", ["area"], registry=r
        )
        self.area_over = Gauge(
            "appliance_area_over_threshold", "1 when the area is over its occupancy threshold", ["area"], registry=r
        )
        self.up = Gauge("appliance_camera_up", "1 while the camera delivers frames", ["camera"], registry=r)
        self.restarts = Counter("appliance_worker_restarts", "Camera worker restarts", ["camera"], registry=r)
        self.reconnects = Counter(
            "appliance_camera_reconnects", "Streams reopened after a loss", ["camera"], registry=r
        )
        self.generation = Gauge("appliance_config_generation", "Configuration changes applied since start", registry=r)
        self.reload_failures = Counter("appliance_config_reload_failures", "Rejected configuration changes", registry=r)
        info = Gauge(
            "appliance_build_info", "Version, profile and model", ["version", "profile", "model_sha256"], registry=r
        )
        info.labels(__version__, profile_name, model_sha256).set(1)
        self._frame_times: dict[str, deque[float]] = {}
        self._source_counts: dict[str, tuple[int, int]] = {}

    def serve(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)
        log.info("metrics at http://%s/metrics", listen)

    def handle(self, event: Event) -> None:
        if isinstance(event, FrameResult):
            self._frame(event)
        elif isinstance(event, CameraStatus):
            self._status(event)
        elif isinstance(event, EpisodeEvent) and event.kind == "started":
            self.episodes.labels(event.episode.camera_id).inc()
        elif isinstance(event, AreaUpdate):
            status = event.status
            self.area_people.labels(status.area_id).set(status.people)
            self.area_violating.labels(status.area_id).set(status.people_in_violation)
            self.area_over.labels(status.area_id).set(int(status.over_threshold))
        elif isinstance(event, SupervisorEvent):
            self._supervisor(event)

    def observe_publish(self, seconds: float) -> None:
        self.latency.labels("publish").observe(seconds)

    def _frame(self, event: FrameResult) -> None:
        camera = event.camera_id
        self.frames.labels(camera).inc()
        for stage, seconds in event.stage_seconds.items():
            self.latency.labels(stage).observe(seconds)
        self.people.labels(camera).set(event.people)
        self.violating.labels(camera).set(event.people_in_violation)
        times = self._frame_times.setdefault(camera, deque())
        times.append(event.timestamp)
        while times and times[-1] - times[0] > FPS_WINDOW_S:
            times.popleft()
        if len(times) > 1 and times[-1] > times[0]:
            self.fps.labels(camera).set((len(times) - 1) / (times[-1] - times[0]))

    def _status(self, event: CameraStatus) -> None:
        camera = event.camera_id
        self.up.labels(camera).set(int(event.online))
        last_dropped, last_reconnects = self._source_counts.get(camera, (0, 0))
        # a restarted worker counts from zero again
        self.dropped.labels(camera).inc(
            event.dropped - last_dropped if event.dropped >= last_dropped else event.dropped
        )
        self.reconnects.labels(camera).inc(
            event.reconnects - last_reconnects if event.reconnects >= last_reconnects else event.reconnects
        )
        self._source_counts[camera] = (event.dropped, event.reconnects)

    def _supervisor(self, event: SupervisorEvent) -> None:
        if event.kind == "worker_restarting" and event.camera_id:
            self.restarts.labels(event.camera_id).inc()
            self.up.labels(event.camera_id).set(0)
        elif event.kind == "camera_failed" and event.camera_id:
            self.up.labels(event.camera_id).set(0)
        elif event.kind == "config_applied":
            self.generation.inc()
        elif event.kind == "config_rejected":
            self.reload_failures.inc()
