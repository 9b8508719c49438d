"""Zones and lines against the ground truth: the same counts (crossings per line and direction,
people per zone and frame, the dwell of each visit), derived from the ground-truth tracks by the
appliance's own zone and line logic, and scored against what the appliance reported."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from appliance.config.model import LineConfig, ZoneConfig
from appliance.runtime.analysis.lines import LineCounter
from appliance.runtime.analysis.zones import ZoneTracker
from appliance.runtime.types import ZoneVisit
from evaluation import GroundTruthBox


def layout(width: int, height: int) -> tuple[list[ZoneConfig], list[LineConfig]]:
    """The zones and lines of every sequence, as shares of its frame; placed once, before any
    result was seen, and not to be moved to fit one: the left half and a centre box; a vertical
    line through the middle and a horizontal one at 60 % of the height."""

    def at(x: float, y: float) -> tuple[float, float]:
        return round(x * width, 1), round(y * height, 1)

    zones = [
        ZoneConfig(id="left", polygon=(at(0, 0), at(0.5, 0), at(0.5, 1), at(0, 1)), units="pixels",
                   loitering_s=None, exit_after_s=1.0),
        ZoneConfig(id="centre", polygon=(at(0.25, 0.4), at(0.75, 0.4), at(0.75, 0.9), at(0.25, 0.9)),
                   units="pixels", loitering_s=None, exit_after_s=1.0),
    ]  # fmt: skip
    lines = [
        LineConfig(id="vertical", points=(at(0.5, 0), at(0.5, 1)), units="pixels", in_side="left",
                   hysteresis=15.0, min_crossing_s=0.5),
        LineConfig(id="horizontal", points=(at(0, 0.6), at(1, 0.6)), units="pixels", in_side="left",
                   hysteresis=15.0, min_crossing_s=0.5),
    ]  # fmt: skip
    return zones, lines


@dataclass(frozen=True)
class Visit:
    zone: str
    person: int  # ground-truth id, or track id
    entered: float
    left: float

    @property
    def dwell_s(self) -> float:
        return self.left - self.entered


@dataclass
class PlacesFigures:
    crossings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (line, direction) -> count
    people: dict[str, dict[int, int]] = field(default_factory=dict)  # zone -> frame -> people inside
    visits: list[Visit] = field(default_factory=list)


def truth_places(
    truth: dict[int, list[GroundTruthBox]], zones: list[ZoneConfig], lines: list[LineConfig], fps: float
) -> PlacesFigures:
    """The figures of the ground truth's people (flag-1 boxes), frame k at time (k - 1) / fps."""
    figures = PlacesFigures(people={z.id: {} for z in zones})
    trackers = [ZoneTracker("truth", z) for z in zones]
    counters = [LineCounter("truth", line) for line in lines]
    for number in range(1, max(truth) + 1):
        t = (number - 1) / fps
        feet = {b.track_id: ((b.box[0] + b.box[2]) / 2, b.box[3]) for b in truth.get(number, []) if b.counts}
        for tracker in trackers:
            frame = tracker.update(t, feet, violating=())
            figures.people[tracker.zone.id][number] = frame.count.people
            figures.visits += [_visit(event.visit) for event in frame.visits]
        for counter in counters:
            figures.crossings.update((c.line_id, c.direction) for c in counter.update(t, feet))
    for tracker in trackers:
        figures.visits += [_visit(event.visit) for event in tracker.finish()]
    for counter in counters:
        figures.crossings.update((c.line_id, c.direction) for c in counter.finish())
    return figures


def _visit(visit: ZoneVisit) -> Visit:
    return Visit(visit.zone_id, visit.track_id, visit.entered, visit.left if visit.left is not None else visit.entered)


def zone_mae(reported: dict[int, int], true: dict[int, int]) -> float:
    """Mean absolute error of people per frame over every frame of the ground truth (a frame
    the appliance reported nothing for counts as 0 people)."""
    return statistics.fmean(abs(reported.get(n, 0) - count) for n, count in true.items())


def dwell_errors(reported: Iterable[Visit], true: Iterable[Visit], identities: dict[int, int]) -> list[float]:
    """For each true visit, |reported dwell - true dwell| of the reported visit of the same zone,
    by a track mapped to the same person, that overlaps it most; visits with none are left out."""
    by_person: dict[tuple[str, int], list[Visit]] = {}
    for visit in reported:
        if visit.person in identities:
            by_person.setdefault((visit.zone, identities[visit.person]), []).append(visit)
    errors = []
    for visit in true:
        candidates = by_person.get((visit.zone, visit.person), [])
        overlaps = [(min(v.left, visit.left) - max(v.entered, visit.entered), v) for v in candidates]
        best = max(overlaps, key=lambda pair: pair[0], default=None)
        if best is not None and best[0] > 0:
            errors.append(abs(best[1].dwell_s - visit.dwell_s))
    return errors
