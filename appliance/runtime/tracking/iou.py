"""The reference system's IoU tracker: each track takes the detection it overlaps most."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.config.model import TrackerConfig
from appliance.runtime.tracking.base import Tracker, box_iou
from appliance.runtime.types import Box, Detection, Track


@dataclass
class _IouTrack:
    track_id: int
    box: Box
    last_seen: float
    hits: int = 1


class IouTracker(Tracker):
    def __init__(self, config: TrackerConfig) -> None:
        super().__init__(config)
        self.tracks: list[_IouTrack] = []

    def update(self, detections: Sequence[Detection], timestamp: float) -> list[Track]:
        self.tracks = [t for t in self.tracks if not self.expired(t.last_seen, timestamp)]
        ious = box_iou([t.box for t in self.tracks], [d.box for d in detections])
        unmatched = set(range(len(detections)))
        reported: list[Track] = []
        for row, track in enumerate(self.tracks):
            candidates = [j for j in unmatched if ious[row, j] >= self.config.iou_threshold]
            if not candidates:
                continue
            best = max(candidates, key=lambda j: ious[row, j])
            unmatched.discard(best)
            track.box, track.hits, track.last_seen = detections[best].box, track.hits + 1, timestamp
            if track.hits >= self.config.min_hits:
                reported.append(Track(track.track_id, track.box, detections[best].score, track.hits))
        for j in sorted(unmatched):
            self.tracks.append(_IouTrack(self.new_id(), detections[j].box, timestamp))
            if self.config.min_hits <= 1:
                reported.append(Track(self.tracks[-1].track_id, detections[j].box, detections[j].score, 1))
        return reported

    def possible_people(self) -> list[Box]:
        return [t.box for t in self.tracks]
