"""The one JSON shape of each event and state, for every output (the event log, MQTT, the API).

Each shape has a versioned JSON Schema in schemas/events/<type>.schema.json; every object
carries its `type`, the schema version `v` and the event's own time `t` (video time in
historical mode). Numbers are rounded to what is meaningful, so payloads stay small."""

from __future__ import annotations

import dataclasses
from typing import Any

from appliance.runtime.events import (
    MASK_MINUTE_S,
    AreaAlert,
    AreaMasks,
    AreaUpdate,
    CameraLifecycle,
    CameraStatus,
    CameraSummary,
    ConfigChanged,
    EpisodeEvent,
    Event,
    FrameResult,
    LineUpdate,
    MaskCounts,
    MaskMinute,
    RunEvent,
    Snapshot,
    UpdateResult,
    UpdateStatus,
    WorkerFailed,
    ZoneUpdate,
    ZoneVisitEvent,
)
from appliance.runtime.state import CameraState, DeviceState, OutputStats
from appliance.runtime.types import Crossing, ViolationEpisode

VERSION = 1
MAX_DWELL_LISTED = 50  # a zone's longest running visits listed; the count says how many there are
Json = dict[str, Any]


def to_json(event: Event) -> Json:
    """The event as a JSON-ready dict."""
    match event:
        case FrameResult(tracks=None):
            body = _frame(event)
        case FrameResult():
            body = _detections(event)
        case CameraStatus():
            body = _camera_status(event)
        case EpisodeEvent():
            body = episode_json(event.episode, event.kind)
        case Snapshot():
            body = {"type": "snapshot", "t": event.timestamp, "camera": event.camera_id, "width": event.width,
                    "height": event.height, "bytes": len(event.jpeg)}  # fmt: skip
        case WorkerFailed():
            body = {"type": "camera_error", "t": event.timestamp, "camera": event.camera_id, "message": event.message}
        case CameraLifecycle():
            body = {"type": "camera_lifecycle", "t": event.timestamp, "camera": event.camera_id,
                    "kind": event.kind, "reason": event.reason or None}  # fmt: skip
        case AreaUpdate():
            body = _area(event)
        case ZoneUpdate():
            body = _zone(event)
        case ZoneVisitEvent():
            body = _zone_visit(event)
        case MaskMinute():
            body = _masks(event)
        case AreaMasks():
            body = {"type": "area_masks", "t": event.minute + MASK_MINUTE_S, "area": event.area_id,
                    "minute": event.minute, **mask_counts_json(event.counts)}  # fmt: skip
        case LineUpdate():
            body = _crossing(event)
        case Crossing():
            raise TypeError("a crossing is published with its line's counts, as the LineUpdate the state makes of it")
        case AreaAlert():
            body = _alert(event)
        case ConfigChanged():
            body = _config(event)
        case UpdateStatus():
            body = update_json(event)
        case RunEvent():
            body = _run(event)
    return {"type": body.pop("type"), "v": VERSION, **body}


def update_json(status: UpdateStatus) -> Json:
    return {
        "type": "update",
        "t": status.timestamp,
        "installed_version": status.installed_version,
        "in_progress": status.in_progress,
        "result": None if status.result is None else update_result_json(status.result),
        "last_result": None if status.last_result is None else update_result_json(status.last_result),
    }


def update_result_json(result: UpdateResult) -> Json:
    return {
        "bundle": result.bundle, "outcome": result.outcome, "at": result.at, "version": result.version,
        "kind": result.kind, "reason": result.reason, "message": result.message, "description": result.description,
    }  # fmt: skip


def episode_json(episode: ViolationEpisode, state: str) -> Json:
    duration = episode.duration
    return {
        "type": "episode",
        "t": episode.start if episode.end is None else episode.end,
        "camera": episode.camera_id,
        "state": state,
        "pair": list(episode.pair),
        "start": episode.start,
        "end": episode.end,
        "duration_s": None if duration is None else round(duration, 3),
        "min_distance_cm": round(episode.min_distance_cm, 1),
        "severity": episode.severity,
    }


def _frame(event: FrameResult) -> Json:
    return {
        "type": "frame",
        "t": event.timestamp,
        "camera": event.camera_id,
        "frame": event.index,
        "people": event.people,
        "people_in_violation": event.people_in_violation,
    }


def _detections(event: FrameResult) -> Json:
    people = [
        {"id": t.track_id, "box": [round(v, 1) for v in t.box], "score": round(t.score, 3), "violation": t.in_violation}
        for t in event.tracks or ()
    ]
    body = {"type": "detections", "t": event.timestamp, "camera": event.camera_id, "frame": event.index,
            "people": people}  # fmt: skip
    if event.tally is not None:
        body["tally"] = dataclasses.asdict(event.tally)
    return body


def _camera_status(event: CameraStatus) -> Json:
    progress = None if event.progress is None else {"done": event.progress[0], "total": event.progress[1]}
    return {
        "type": "camera_status",
        "t": event.sent_at,
        "camera": event.camera_id,
        "online": event.online,
        "error": event.error,
        "frames": event.frames,
        "dropped": event.dropped,
        "skipped": event.skipped,
        "motion_skipped": event.motion_skipped,
        "reconnects": event.reconnects,
        "finished": event.finished,
        "progress": progress,
    }


def _area(event: AreaUpdate) -> Json:
    return {
        "type": "area",
        "t": event.timestamp,
        "area": event.area_id,
        "people": event.people,
        "people_in_violation": event.people_in_violation,
        "cameras_reporting": event.cameras_reporting,
        "estimated_people": event.estimated_people,
        "threshold": event.threshold,
        "over_threshold": event.over_threshold,
        "environment_score": round(event.environment_score, 3),
    }


def _zone(event: ZoneUpdate) -> Json:
    return {
        "type": "zone",
        "t": event.timestamp,
        "camera": event.camera_id,
        "zone": event.zone_id,
        "people": event.people,
        "people_in_violation": event.people_in_violation,
        "dwell_s": [round(d, 1) for d in event.dwell_s[:MAX_DWELL_LISTED]],
    }


def _masks(event: MaskMinute) -> Json:
    zones = {zone: mask_counts_json(counts) for zone, counts in event.zones}
    return {"type": "masks", "t": event.start + MASK_MINUTE_S, "camera": event.camera_id, "minute": event.start,
            **mask_counts_json(event.counts), "zones": zones}  # fmt: skip


def mask_counts_json(counts: MaskCounts) -> Json:
    return {"masked": counts.masked, "unmasked": counts.unmasked, "too_small": counts.too_small}


def _zone_visit(event: ZoneVisitEvent) -> Json:
    visit = event.visit
    return {
        "type": "zone_visit",
        "t": event.timestamp,
        "camera": visit.camera_id,
        "zone": visit.zone_id,
        "state": event.kind,
        "track": visit.track_id,
        "entered": visit.entered,
        "left": visit.left,
        "dwell_s": round(visit.dwell_s(event.timestamp), 3),
    }


def _crossing(event: LineUpdate) -> Json:
    crossing, counts = event.crossing, event.counts
    return {
        "type": "crossing",
        "t": crossing.timestamp,
        "camera": crossing.camera_id,
        "line": crossing.line_id,
        "track": crossing.track_id,
        "direction": crossing.direction,
        "day": counts.day,
        "hour": counts.hour,
        "in_today": counts.in_today,
        "out_today": counts.out_today,
        "in_hour": counts.in_hour,
        "out_hour": counts.out_hour,
    }


def _alert(event: AreaAlert) -> Json:
    return {
        "type": "alert",
        "t": event.timestamp,
        "area": event.area_id,
        "kind": event.kind,
        "people": event.people,
        "people_in_violation": event.people_in_violation,
        "detail": event.detail,
    }


def _run(event: RunEvent) -> Json:
    body: Json = {"type": "run", "t": event.timestamp, "run": event.run_id, "state": event.kind, "input": event.input}
    if event.summary is not None:
        cameras = [_camera_summary(camera) for camera in event.summary.cameras]
        body["summary"] = {"cameras": cameras, "alerts": event.summary.alerts,
                           "events_folder": event.summary.events_folder}  # fmt: skip
    return body


def _camera_summary(camera: CameraSummary) -> Json:
    return {
        "camera": camera.camera_id, "frames": camera.frames, "seconds": round(camera.seconds, 1),
        "peak_people": camera.peak_people, "mean_people": round(camera.mean_people, 2),
        "peak_in_violation": camera.peak_in_violation, "mean_in_violation": round(camera.mean_in_violation, 2),
        "episodes": camera.episodes,
    }  # fmt: skip


def _config(event: ConfigChanged) -> Json:
    return {
        "type": "config",
        "t": event.timestamp,
        "kind": event.kind,
        "generation": event.generation,
        "source": event.source,
        "restarted": list(event.restarted),
        "added": list(event.added),
        "removed": list(event.removed),
        "reconfigured": list(event.reconfigured),
        "errors": list(event.errors),
    }


def camera_state_json(state: CameraState, t: float) -> Json:
    """MQTT camera/<id>/state: what a camera sees now and whether it runs."""
    return {
        "type": "camera_state",
        "v": VERSION,
        "t": t,
        "camera": state.camera_id,
        "status": state.status,
        "reason": state.reason,
        "people": state.people,
        "people_in_violation": state.people_in_violation,
        "open_episodes": state.open_episodes,
        "violation": state.open_episodes > 0,
        "fps": round(state.fps, 1),
    }


def device_json(device: DeviceState, t: float) -> Json:
    """MQTT device: the appliance's identity and configuration generation."""
    return {
        "type": "device",
        "v": VERSION,
        "t": t,
        "device": device.device_id,
        "name": device.name,
        "version": device.version,
        "profile": device.profile,
        "generation": device.generation,
        "uptime_s": round(device.uptime_s, 1),
        "outputs": outputs_json(device.outputs),
    }


def outputs_json(outputs: tuple[OutputStats, ...]) -> Json:
    """Each active output's health: a notification channel away, a bucket refusing, a full spool."""
    return {
        o.name: {"up": o.problem is None, "problem": o.problem, "spooled": o.spooled, "delivered": o.delivered,
                 "lost": o.lost, "dropped": o.dropped}
        for o in outputs
        if o.active
    }  # fmt: skip


def command_error_json(topic: str, error: str, t: float) -> Json:
    """MQTT error: a refused command; `topic` as received, escaped and cut to 200 characters."""
    shown = topic[:200].encode("unicode_escape").decode("ascii")
    return {"type": "command_error", "v": VERSION, "t": t, "topic": shown, "error": error}
