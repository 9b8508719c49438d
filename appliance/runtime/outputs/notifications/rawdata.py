"""The raw-data feed of a webhook: sampled detections, violation episodes, line crossings and
zone visits gathered for an interval, then kept as one message: a batch of the appliance's event
JSON (schemas/events/batch.json), or, in the reference format, one PUT per sampled frame in the
shape of Smart Social Distancing's web_hook_logger."""

from __future__ import annotations

from appliance.config.model import RawDataConfig
from appliance.runtime.analysis.occupancy import environment_score
from appliance.runtime.events import EpisodeEvent, Event, FrameResult, LineUpdate, ZoneVisitEvent
from appliance.runtime.outputs.channels.base import Message, message_id
from appliance.runtime.serialize import VERSION, Json, to_json

MAX_BATCH_EVENTS = 5000  # a batch is sent early rather than grow past this
REFERENCE_VERSION = "1.0"


class RawFeed:
    def __init__(self, config: RawDataConfig, device_id: str, started: float) -> None:
        self.config = config
        self.device_id = device_id
        self._events: list[Json] = []
        self._reference: list[Message] = []
        self._since = started

    @staticmethod
    def wants(event: Event) -> bool:
        """The events a feed of either format may take: sampled frames and what the batches carry."""
        return isinstance(event, FrameResult | EpisodeEvent | LineUpdate | ZoneVisitEvent) and (
            not isinstance(event, FrameResult) or event.tracks is not None
        )

    def take(self, event: Event) -> None:
        if self.config.format == "reference":
            if isinstance(event, FrameResult) and event.tracks is not None:
                self._reference.append(self._reference_message(event))
            return
        match event:
            case FrameResult(tracks=tuple()) | EpisodeEvent() | LineUpdate() | ZoneVisitEvent():
                self._events.append(to_json(event))

    def due(self, now: float) -> bool:
        waiting = len(self._events) + len(self._reference)
        return waiting >= MAX_BATCH_EVENTS or (waiting > 0 and now - self._since >= self.config.interval_s)

    def flush(self, now: float) -> list[Message]:
        """What came in since the last flush, as messages to keep."""
        self._since = now
        messages, self._reference = self._reference, []
        if self._events:
            body = {"type": "batch", "v": VERSION, "t": now, "device": self.device_id, "events": self._events}
            messages.append(Message(message_id(), "raw", f"{len(self._events)} event(s)", "", body, now))
            self._events = []
        return messages

    def _reference_message(self, frame: FrameResult) -> Message:
        tracks = frame.tracks or ()
        body = {
            "version": REFERENCE_VERSION,
            "timestamp": frame.timestamp,
            "camera": frame.camera_id,
            "detected_objects": frame.people,
            "violating_objects": frame.people_in_violation,
            "environment_score": environment_score(frame.people, frame.people_in_violation),
            "detections": [
                {"id": t.track_id, "bbox": [round(v, 1) for v in t.box], "score": round(t.score, 3)} for t in tracks
            ],
            "violations_indexes": [i for i, t in enumerate(tracks) if t.in_violation],
        }
        return Message(message_id(), "raw", f"frame {frame.index}", "", body, frame.timestamp, method="PUT")
