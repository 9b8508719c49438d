"""Prometheus metrics; low-cardinality labels only (camera, area, stage, output).

Counters and latencies follow the events; gauges (FPS, up, people, areas, generation, output
queues) are read from the runtime state when Prometheus scrapes, so they always agree with it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from appliance import __version__
from appliance.buildinfo import load_build_info
from appliance.config import LoadedProfile
from appliance.runtime.events import (
    MASK_VERDICTS,
    CameraLifecycle,
    CameraStatus,
    ConfigChanged,
    EpisodeEvent,
    Event,
    FrameResult,
    LineUpdate,
    MaskMinute,
    UpdateResult,
    UpdateStatus,
    ZoneUpdate,
    ZoneVisitEvent,
)
from appliance.runtime.outputs.base import Output
from appliance.runtime.state import RuntimeState

log = logging.getLogger(__name__)
DWELL_BUCKETS_S = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics(Output):
    name = "metrics"

    def __init__(self, loaded: LoadedProfile, state: RuntimeState) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter("appliance_frames_processed", "Frames processed", ["camera"], registry=r)
        self.dropped = Counter(
            "appliance_frames_dropped", "Live frames replaced before they were read (the worker fell behind)",
            ["camera"], registry=r,
        )  # fmt: skip
        self.skipped = Counter(
            "appliance_frames_skipped", "Frames not converted (cap: fps_cap) or not detected (motion: nothing moved)",
            ["camera", "reason"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "appliance_stage_latency_seconds",
            "Time per frame in each stage: wait (for the next frame), decode (on the source's thread), queue (for "
            "the shared detector's other cameras), detect, track, analyse", ["camera", "stage"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.episodes = Counter("appliance_violation_episodes", "Violation episodes started", ["camera"], registry=r)
        self.restarts = Counter("appliance_worker_restarts", "Camera worker restarts", ["camera"], registry=r)
        self.reconnects = Counter(
            "appliance_camera_reconnects", "Streams reopened after a loss", ["camera"], registry=r
        )
        self.crossings = Counter(
            "appliance_line_crossings", "People who crossed a line", ["camera", "line", "direction"], registry=r
        )
        self.visits = Counter("appliance_zone_visits", "Zone visits ended", ["camera", "zone"], registry=r)
        self.dwell = Histogram(
            "appliance_zone_dwell_seconds", "Time people spent in a zone, per visit", ["camera", "zone"],
            buckets=DWELL_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.loitering = Counter("appliance_zone_loitering", "Visits longer than loitering_s", ["camera", "zone"],
                                 registry=r)  # fmt: skip
        self.faces = Counter("appliance_faces", "People looked at by the mask stage, once a minute each, by verdict "
                             "(masked, unmasked, too_small)", ["camera", "verdict"], registry=r)  # fmt: skip
        self.zone_faces = Counter("appliance_zone_faces", "The same, per zone", ["camera", "zone", "verdict"],
                                  registry=r)  # fmt: skip
        self.reload_failures = Counter("appliance_config_reload_failures", "Rejected configuration changes", registry=r)
        self.ota_failures = Counter(
            "appliance_ota_failures", "OTA bundles refused or rolled back", ["reason"], registry=r
        )
        self.state_collector = StateCollector(state, loaded)
        r.register(self.state_collector)
        self._source_counts: dict[str, tuple[int, int, int, int]] = {}
        self._server: tuple[WSGIServer, Thread] | None = None
        self._listen: str | None = loaded.profile.metrics.listen if loaded.profile.metrics.enabled else None

    def start(self) -> None:
        if self._listen:
            self._serve(self._listen)

    def reconfigure(self, loaded: LoadedProfile) -> None:
        self.state_collector.loaded = loaded
        metrics = loaded.profile.metrics
        listen = metrics.listen if metrics.enabled else None
        if listen != self._listen:
            self._stop_serving()
            self._listen = listen
            if listen:
                self._serve(listen)

    def close(self) -> None:
        self._stop_serving()

    def _mask_minute(self, minute: MaskMinute) -> None:
        for verdict in MASK_VERDICTS:
            self.faces.labels(minute.camera_id, verdict).inc(getattr(minute.counts, verdict))
            for zone, counts in minute.zones:
                self.zone_faces.labels(minute.camera_id, zone, verdict).inc(getattr(counts, verdict))

    def handle(self, event: Event) -> None:
        match event:
            case FrameResult():
                self.frames.labels(event.camera_id).inc()
                for stage, seconds in event.stage_seconds.items():
                    self.latency.labels(event.camera_id, stage).observe(seconds)
            case CameraStatus():
                self._source_status(event)
            case EpisodeEvent(kind="started"):
                self.episodes.labels(event.episode.camera_id).inc()
            case LineUpdate(crossing=crossing):
                self.crossings.labels(crossing.camera_id, crossing.line_id, crossing.direction).inc()
            case ZoneVisitEvent(kind="ended", visit=visit):
                self.visits.labels(visit.camera_id, visit.zone_id).inc()
                self.dwell.labels(visit.camera_id, visit.zone_id).observe(event.visit.dwell_s(event.timestamp))
            case ZoneVisitEvent(visit=visit):
                self.loitering.labels(visit.camera_id, visit.zone_id).inc()
            case MaskMinute():
                self._mask_minute(event)
            case CameraLifecycle(kind="worker_restarting"):
                self.restarts.labels(event.camera_id).inc()
            case ConfigChanged(kind="rejected"):
                self.reload_failures.inc()
            case UpdateStatus(result=UpdateResult(outcome="installed") as result):
                self.state_collector.last_ota_success = result.at
            case UpdateStatus(last_result=UpdateResult(outcome="installed") as result, result=None):
                self.state_collector.last_ota_success = result.at
            case UpdateStatus(result=UpdateResult(reason=str(reason))):
                self.ota_failures.labels(reason).inc()

    def _source_status(self, event: CameraStatus) -> None:
        camera = event.camera_id
        counts = (event.dropped, event.skipped, event.motion_skipped, event.reconnects)
        dropped, cap, motion, reconnects = map(_increase, self._source_counts.get(camera, (0, 0, 0, 0)), counts)
        self.dropped.labels(camera).inc(dropped)
        self.skipped.labels(camera, "cap").inc(cap)
        self.skipped.labels(camera, "motion").inc(motion)
        self.reconnects.labels(camera).inc(reconnects)
        self._source_counts[camera] = counts

    def _serve(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        try:
            self._server = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)
        except OSError as error:
            log.error("metrics: cannot listen on %s: %s", listen, error.strerror or error)
            self._listen = None  # the next profile change tries again
            return
        log.info("metrics at http://%s/metrics", listen)

    def _stop_serving(self) -> None:
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            server.server_close()
            thread.join(5)
            self._server = None


class StateCollector(Collector):
    """Gauges read from the runtime state at scrape time."""

    def __init__(self, state: RuntimeState, loaded: LoadedProfile) -> None:
        self.state = state
        self.loaded = loaded
        self.last_ota_success: float | None = None  # exported only once there is one

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snapshot = self.state.snapshot()
        cameras = snapshot.cameras.values()
        yield _gauge("appliance_camera_fps", "Frames processed per second", "camera",
                     {c.camera_id: c.fps for c in cameras})  # fmt: skip
        yield _gauge("appliance_camera_up", "1 while the camera delivers frames", "camera",
                     {c.camera_id: float(c.status == "online") for c in cameras})  # fmt: skip
        yield _gauge("appliance_people", "People in view", "camera", {c.camera_id: c.people for c in cameras})
        yield _gauge("appliance_people_in_violation", "People closer than the threshold to someone", "camera",
                     {c.camera_id: c.people_in_violation for c in cameras})  # fmt: skip
        areas = snapshot.areas.values()
        yield _gauge("appliance_area_people", "People in the area", "area", {a.area_id: a.people for a in areas})
        yield _gauge("appliance_area_people_in_violation", "People in violation in the area", "area",
                     {a.area_id: a.people_in_violation for a in areas})  # fmt: skip
        yield _gauge("appliance_area_estimated_people", "People inside estimated from the area's entrances", "area",
                     {a.area_id: a.estimated_people for a in areas if a.estimated_people is not None})  # fmt: skip
        zones = snapshot.zones.values()
        yield _zone_gauge("appliance_zone_people", "People in the zone", zones, lambda z: z.people)
        yield _zone_gauge("appliance_zone_people_in_violation", "People in violation in the zone", zones,
                          lambda z: z.people_in_violation)  # fmt: skip
        yield _zone_gauge("appliance_zone_longest_dwell_seconds", "The longest running visit of the zone", zones,
                          lambda z: max(z.dwell_s, default=0.0))  # fmt: skip
        yield _gauge("appliance_area_over_threshold", "1 when the area is over its occupancy threshold", "area",
                     {a.area_id: float(a.over_threshold) for a in areas})  # fmt: skip
        if snapshot.update is not None:
            installed = GaugeMetricFamily("appliance_ota_installed_version", "Version of the installed OTA bundle")
            installed.add_metric([], snapshot.update.installed_version)
            yield installed
        if self.last_ota_success is not None:
            success = GaugeMetricFamily("appliance_ota_last_success_timestamp_seconds",
                                        "When an OTA bundle was last installed (Unix time)")  # fmt: skip
            success.add_metric([], self.last_ota_success)
            yield success
        generation = GaugeMetricFamily("appliance_config_generation", "Configuration changes applied since start")
        generation.add_metric([], snapshot.device.generation)
        yield generation
        outputs = [o for o in snapshot.device.outputs if o.active]
        yield _gauge("appliance_output_queue", "Events waiting for the output", "output",
                     {o.name: o.queued for o in outputs})  # fmt: skip
        dropped = CounterMetricFamily(
            "appliance_output_events_dropped", "Events an output was too far behind to take", labels=["output"]
        )
        lost = CounterMetricFamily(
            "appliance_output_events_lost", "Events an output took but could not deliver (disk full, ...)",
            labels=["output"],
        )  # fmt: skip
        delivered = CounterMetricFamily(
            "appliance_output_events_delivered", "Events a remote end (the MQTT broker) acknowledged", labels=["output"]
        )
        for output in outputs:
            dropped.add_metric([output.name], output.dropped)
            lost.add_metric([output.name], output.lost)
            delivered.add_metric([output.name], output.delivered)
        yield from (dropped, lost, delivered)
        yield _gauge("appliance_output_spooled", "Events waiting on disk for the output to deliver them", "output",
                     {o.name: o.spooled for o in outputs})  # fmt: skip
        yield _gauge("appliance_output_up", "1 when the output can do its job, 0 when it has a problem", "output",
                     {o.name: float(o.problem is None) for o in outputs})  # fmt: skip
        yield self._build_info()

    def _build_info(self) -> GaugeMetricFamily:
        """The running version, profile and model; the image's revision and the hash of the profile
        it was built with ("none" when not run from a built image)."""
        built = load_build_info() or {}
        labels = ["version", "revision", "profile", "profile_sha256", "model_sha256"]
        info = GaugeMetricFamily("appliance_build_info", "Version, revision, profile and model", labels=labels)
        model = self.loaded.profile.detector.model.sha256 or "none"
        info.add_metric([__version__, str(built.get("revision", "none")), self.loaded.name,
                         str(built.get("profile_sha256", "none")), model], 1)  # fmt: skip
        return info


def _increase(last: int, now: int) -> int:
    """How much a worker's counter grew; a restarted worker counts from zero again."""
    return now - last if now >= last else now


def _zone_gauge(
    name: str, documentation: str, zones: Iterable[ZoneUpdate], value: Callable[[ZoneUpdate], float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["camera", "zone"])
    for zone in zones:
        family.add_metric([zone.camera_id, zone.zone_id], value(zone))
    return family


def _gauge(name: str, documentation: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family
