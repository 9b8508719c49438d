"""People crossing a camera's lines, in and out, each crossing counted once.

A person is on a side of a line only when farther from it than `hysteresis`; moving about within
that band changes nothing. A change of side counts once the person has stayed on the new side,
without a step back into the band, for `min_crossing_s` (or was lost from view there), and only
if the way from where they were last seen on the old side to where they were first seen on the
new one crosses the line, not its ends.
Pure: positions and times in, crossings out; so a crossing counts the same at any frame rate."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import shapely

from appliance.config.model import LineConfig, Point
from appliance.runtime.types import Crossing

FORGET_AFTER_S = 5.0  # a person not seen this long is gone; a crossing they were making counts


@dataclass
class _Pending:
    side: int
    since: float
    first_point: Point


@dataclass
class _Person:
    side: int  # +1 or -1
    last_point: Point  # where last seen on `side`
    last_seen: float
    pending: _Pending | None = None


class LineCounter:
    """One line's crossing state, per person followed."""

    def __init__(self, camera_id: str, line: LineConfig) -> None:
        self.camera_id = camera_id
        self.line = line
        self._people: dict[int, _Person] = {}
        self.configure(line)

    def configure(self, line: LineConfig) -> None:
        """New geometry or settings; the people's sides start afresh when the line moved."""
        if self.line.points != line.points:
            self._people = {}
        self.line = line
        self._shape = shapely.LineString(line.points)
        self._in_sign = -1 if line.in_side == "left" else 1

    def update(self, timestamp: float, positions: Mapping[int, Point]) -> list[Crossing]:
        """The crossings completed by this frame, in which the people followed stand at `positions`."""
        crossings = []
        for track_id, point in positions.items():
            crossing = self._move(track_id, point, timestamp)
            if crossing is not None:
                crossings.append(crossing)
        for track_id, person in list(self._people.items()):
            if timestamp - person.last_seen > FORGET_AFTER_S or timestamp < person.last_seen:
                crossings += self._forget(track_id)
        return crossings

    def finish(self) -> list[Crossing]:
        """The crossings of people still on their new side when the video ends."""
        return [crossing for track_id in list(self._people) for crossing in self._forget(track_id)]

    def _move(self, track_id: int, point: Point, timestamp: float) -> Crossing | None:
        side = self._side(point)
        person = self._people.get(track_id)
        if person is None:
            if side:
                self._people[track_id] = _Person(side, point, timestamp)
            return None
        person.last_seen = timestamp
        if side == 0:  # back in the band: a change of side must start again
            person.pending = None
            return None
        if side == person.side:
            person.last_point, person.pending = point, None
            return None
        if person.pending is None or person.pending.side != side:
            person.pending = _Pending(side, timestamp, point)
        if timestamp - person.pending.since < self.line.min_crossing_s:
            return None
        return self._switch(track_id, person, point)

    def _switch(self, track_id: int, person: _Person, point: Point) -> Crossing | None:
        pending = person.pending
        assert pending is not None
        crossed = self._shape.intersects(shapely.LineString([person.last_point, pending.first_point]))
        person.side, person.last_point, person.pending = pending.side, point, None
        if not crossed:  # went round an end of the line
            return None
        into = pending.side == self._in_sign
        return Crossing(self.camera_id, self.line.id, track_id, "in" if into else "out", pending.since)

    def _forget(self, track_id: int) -> list[Crossing]:
        person = self._people.pop(track_id)
        if person.pending is None:
            return []
        crossing = self._switch(track_id, person, person.pending.first_point)
        return [crossing] if crossing else []

    def _side(self, point: Point) -> int:
        """+1 right of the line, -1 left of it (walking from its first point, y down), 0 within
        the hysteresis band."""
        position = shapely.Point(point)
        if self._shape.distance(position) <= self.line.hysteresis:
            return 0
        along = self._shape.project(position)
        points, travelled = self.line.points, 0.0
        for a, b in itertools.pairwise(points):
            length = ((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5
            if along <= travelled + length:
                break
            travelled += length
        cross = (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0])
        return 1 if cross > 0 else -1
