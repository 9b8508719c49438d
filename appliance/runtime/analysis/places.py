"""A camera's zones and lines together: each person's foot point, in pixels or on the floor as
each zone or line is drawn, through every zone and line of the camera."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from appliance.config.model import CameraConfig, PlaneUnits, Point
from appliance.geometry import Homography, fit_homography
from appliance.runtime.analysis.lines import LineCounter
from appliance.runtime.analysis.zones import ZoneTracker
from appliance.runtime.events import ZoneVisitEvent
from appliance.runtime.types import Crossing, Track, ZoneCount


@dataclass
class PlacesFrame:
    zones: tuple[ZoneCount, ...] = ()
    visits: list[ZoneVisitEvent] = field(default_factory=list)
    crossings: list[Crossing] = field(default_factory=list)


class CameraPlaces:
    """The zones and lines of one camera, with their per-person state between frames."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera_id = camera.id
        self._zones: dict[str, ZoneTracker] = {}
        self._lines: dict[str, LineCounter] = {}
        self.configure(camera)

    def configure(self, camera: CameraConfig) -> None:
        """Take the camera's zones and lines; those kept keep their visits and sides."""
        calibration = camera.distance.calibration
        on_floor = any(z.units == "floor_cm" for z in camera.zones) or any(x.units == "floor_cm" for x in camera.lines)
        self._floor: Homography | None = (  # only what is drawn on the floor maps feet there, each frame
            fit_homography([p.image for p in calibration], [p.floor for p in calibration])
            if calibration and on_floor
            else None
        )
        zones, lines = self._zones, self._lines
        self._zones, self._lines = {}, {}
        for zone in camera.zones:
            self._zones[zone.id] = zones.get(zone.id) or ZoneTracker(camera.id, zone)
            self._zones[zone.id].configure(zone)
        for line in camera.lines:
            self._lines[line.id] = lines.get(line.id) or LineCounter(camera.id, line)
            self._lines[line.id].configure(line)

    def zones_of_people(self) -> dict[int, frozenset[str]]:
        """Each person in a zone, with the zones they are in."""
        zones: dict[int, set[str]] = {}
        for zone_id, tracker in self._zones.items():
            for track_id in tracker.occupants():
                zones.setdefault(track_id, set()).add(zone_id)
        return {track_id: frozenset(ids) for track_id, ids in zones.items()}

    def update(self, timestamp: float, tracks: Sequence[Track], violating: Collection[int]) -> PlacesFrame:
        frame = PlacesFrame()
        if not self._zones and not self._lines:
            return frame
        planes = self._positions(tracks)
        counts = []
        for tracker in self._zones.values():
            zone = tracker.update(timestamp, planes[tracker.zone.units], violating)
            counts.append(zone.count)
            frame.visits += zone.visits
        for counter in self._lines.values():
            frame.crossings += counter.update(timestamp, planes[counter.line.units])
        frame.zones = tuple(counts)
        return frame

    def finish(self) -> PlacesFrame:
        """End every open visit and count the crossings under way, at the end of a recording."""
        frame = PlacesFrame()
        for tracker in self._zones.values():
            frame.visits += tracker.finish()
        for counter in self._lines.values():
            frame.crossings += counter.finish()
        return frame

    def _positions(self, tracks: Sequence[Track]) -> dict[PlaneUnits, dict[int, Point]]:
        pixels = {t.track_id: t.foot_point for t in tracks}
        floor: dict[int, Point] = {}
        if self._floor is not None and tracks:
            mapped = self._floor.to_floor([t.foot_point for t in tracks])
            floor = {
                t.track_id: (float(x), float(y))
                for t, (x, y) in zip(tracks, mapped, strict=True)
                if math.isfinite(x) and math.isfinite(y)  # not beyond the horizon
            }
        return {"pixels": pixels, "floor_cm": floor}
