"""Every camera's zones and lines as the runtime's state keeps them: each zone's latest counts,
each line's counts in local time and each area's occupancy estimated from its entrances."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from appliance.config.model import AreaConfig, Profile
from appliance.runtime.analysis.counting import EntranceEstimate, LineTotals
from appliance.runtime.analysis.occupancy import CameraCounts
from appliance.runtime.events import FrameResult, LineUpdate, ZoneUpdate
from appliance.runtime.types import Crossing

Place = str  # CAMERA/ZONE or CAMERA/LINE


class SitePlaces:
    def __init__(self, profile: Profile) -> None:
        self._zones: dict[Place, ZoneUpdate] = {}
        self._lines: dict[Place, LineTotals] = {}
        self._latest: dict[Place, LineUpdate] = {}  # each line's last crossing, with its counts
        self._estimates: dict[str, EntranceEstimate] = {}
        self._entrances: dict[Place, list[str]] = {}  # line -> areas it is an entrance of
        self.configure(profile)

    def configure(self, profile: Profile) -> None:
        """Follow a new profile; counts of lines, zones and estimates that are kept go on."""
        zone = ZoneInfo(profile.device.timezone)
        lines = {f"{c.id}/{line.id}" for c in profile.cameras for line in c.lines}
        zones = {f"{c.id}/{z.id}" for c in profile.cameras for z in c.zones}
        self._zones = {k: v for k, v in self._zones.items() if k in zones}
        kept = {k: v for k, v in self._lines.items() if k in lines and v.zone == zone}
        self._lines = {k: kept.get(k) or LineTotals(zone) for k in lines}
        self._latest = {k: v for k, v in self._latest.items() if k in kept}
        old = self._estimates
        self._estimates = {a.id: _estimate(old.get(a.id), a, zone) for a in profile.areas if a.entrances}
        self._entrances = {}
        for area in profile.areas:
            for line in area.entrances:
                self._entrances.setdefault(line, []).append(area.id)

    def frame(self, event: FrameResult) -> list[ZoneUpdate]:
        updates = [
            ZoneUpdate(event.camera_id, z.zone_id, event.timestamp, z.people, z.people_in_violation, z.dwell_s)
            for z in event.zones
        ]
        for update in updates:
            self._zones[f"{update.camera_id}/{update.zone_id}"] = update
        return updates

    def crossing(self, crossing: Crossing) -> tuple[LineUpdate | None, list[str]]:
        """The line's new counts, and the areas whose estimate it changed."""
        place = f"{crossing.camera_id}/{crossing.line_id}"
        totals = self._lines.get(place)
        if totals is None:  # a line removed meanwhile
            return None, []
        counts = totals.add(crossing.direction, crossing.timestamp)
        areas = self._entrances.get(place, [])
        for area_id in areas:
            self._estimates[area_id].add(crossing.direction, crossing.timestamp)
        self._latest[place] = LineUpdate(crossing, counts)
        return self._latest[place], areas

    def zone_counts(self, area: AreaConfig, online: set[str]) -> list[CameraCounts]:
        """The counts of the area's zones whose camera is online."""
        return [
            CameraCounts(z.people, z.people_in_violation)
            for place in area.zones
            if (z := self._zones.get(place)) is not None and z.camera_id in online
        ]

    def estimate(self, area_id: str, timestamp: float) -> int | None:
        estimate = self._estimates.get(area_id)
        return None if estimate is None else estimate.at(timestamp)

    def zones(self) -> dict[Place, ZoneUpdate]:
        return dict(self._zones)

    def lines(self) -> dict[Place, LineUpdate]:
        return dict(self._latest)


def _estimate(old: EntranceEstimate | None, area: AreaConfig, zone: ZoneInfo) -> EntranceEstimate:
    fresh = EntranceEstimate(area.occupancy_reset_at, zone)
    if old is not None and (old.reset_at, old.zone) == (fresh.reset_at, fresh.zone):
        return old
    return fresh
