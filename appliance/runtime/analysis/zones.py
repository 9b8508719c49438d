"""Who is in a camera's zone now, how long each visit lasts (dwell) and who loiters.

A person is in the zone when their foot point is (the boundary counts). A visit begins the first
frame they are inside and ends once they have been outside, or out of sight, for `exit_after_s`;
its end is the last time they were seen inside, so a missed detection or a step over the edge
does not split it. Pure: positions and times in, counts and visits out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import shapely

from appliance.config.model import Point, ZoneConfig
from appliance.runtime.events import ZoneVisitEvent
from appliance.runtime.types import ZoneCount, ZoneVisit


@dataclass
class ZoneFrame:
    count: ZoneCount
    visits: list[ZoneVisitEvent] = field(default_factory=list)  # ended, or passed loitering_s, now


@dataclass
class _Visit:
    entered: float
    last_inside: float
    loitering_reported: bool = False


class ZoneTracker:
    """One zone's open visits, per person followed."""

    def __init__(self, camera_id: str, zone: ZoneConfig) -> None:
        self.camera_id = camera_id
        self._visits: dict[int, _Visit] = {}
        self.configure(zone)

    def configure(self, zone: ZoneConfig) -> None:
        """New settings; open visits are kept (they end by the new polygon's rule)."""
        self.zone = zone
        self._shape = shapely.Polygon(zone.polygon)
        shapely.prepare(self._shape)

    def occupants(self) -> frozenset[int]:
        """The people whose visit is open: inside, or just out of sight."""
        return frozenset(self._visits)

    def inside(self, positions: Mapping[int, Point]) -> set[int]:
        if not positions:
            return set()
        ids = list(positions)
        xs, ys = zip(*(positions[i] for i in ids), strict=True)
        return {i for i, hit in zip(ids, shapely.intersects_xy(self._shape, xs, ys), strict=True) if hit}

    def update(self, timestamp: float, positions: Mapping[int, Point], violating: Collection[int]) -> ZoneFrame:
        """This frame's count, the visits that ended and those that became loitering."""
        inside = self.inside(positions)
        if any(timestamp < visit.last_inside for visit in self._visits.values()):  # a recording started over
            self._visits = {}
        for track_id in inside:
            visit = self._visits.setdefault(track_id, _Visit(timestamp, timestamp))
            visit.last_inside = timestamp
        events = []
        for track_id, visit in list(self._visits.items()):
            if timestamp - visit.last_inside > self.zone.exit_after_s:
                events.append(self._ended(track_id, visit))
                del self._visits[track_id]
            elif self._loiters(visit, timestamp):
                visit.loitering_reported = True
                record = ZoneVisit(self.camera_id, self.zone.id, track_id, visit.entered, None)
                events.append(ZoneVisitEvent(record, "loitering", timestamp))
        dwell = tuple(sorted((timestamp - v.entered for v in self._visits.values()), reverse=True))
        count = ZoneCount(self.zone.id, len(inside), len(inside & set(violating)), dwell)
        return ZoneFrame(count, events)

    def finish(self) -> list[ZoneVisitEvent]:
        """End every open visit, at shutdown or the end of a recording."""
        ended = [self._ended(i, v) for i, v in self._visits.items()]
        self._visits = {}
        return ended

    def _loiters(self, visit: _Visit, timestamp: float) -> bool:
        limit = self.zone.loitering_s
        return limit is not None and not visit.loitering_reported and timestamp - visit.entered >= limit

    def _ended(self, track_id: int, visit: _Visit) -> ZoneVisitEvent:
        record = ZoneVisit(self.camera_id, self.zone.id, track_id, visit.entered, visit.last_inside)
        return ZoneVisitEvent(record, "ended", visit.last_inside)
