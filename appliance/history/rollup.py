"""One-minute rollups of the event log's records, pure: records in, additive deltas out.

Every figure is a sum or a maximum, so deltas from any number of batches, in any order, add up
to the same rows: a camera that was offline and sends late, or a recording replayed later, lands
in the minutes its events belong to. Samples are weighted in time by the gap since the previous
sample of the same entity in the same stream (at most `MAX_GAP_S`; a new run starts afresh)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

MINUTE_S = 60
HOUR_S = 3600
HEAT_CELL_PX = 32  # heatmap cells, in image pixels
HEAT_CELL_BASE = 4096  # cell = row * base + column
MAX_GAP_S = 5.0  # samples farther apart weigh nothing between them (a camera offline, a restart)

Json = dict[str, Any]
EntityKey = tuple[str, str]  # (kind, name): ("camera", "cam1"), ("zone", "cam1/door"), ("line", ...), ("area", ...)


@dataclass
class MinuteRow:
    """One entity's figures in one minute; every field adds up, except the maxima."""

    samples: int = 0  # frames the samples stand for
    people_sum: float = 0.0
    people_max: int = 0
    violating_sum: float = 0.0
    violating_max: int = 0
    seconds: float = 0.0  # time covered by samples
    violating_person_s: float = 0.0
    over_s: float = 0.0  # seconds over the occupancy threshold
    crossed_in: int = 0
    crossed_out: int = 0
    alerts: int = 0
    loitering: int = 0
    threshold: int = 0  # the highest occupancy threshold in force (0: none)
    masked: int = 0  # people the mask stage judged, once a minute each
    unmasked: int = 0
    faces_too_small: int = 0

    MAXIMA = ("people_max", "violating_max", "threshold")

    def merge(self, other: MinuteRow) -> None:
        for name in COLUMNS:
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, max(mine, theirs) if name in self.MAXIMA else mine + theirs)


COLUMNS = tuple(f.name for f in fields(MinuteRow))


@dataclass(frozen=True)
class Tally:
    """The frames one sample stands for (a `detections` record's `tally`; one frame otherwise)."""

    frames: int
    people_sum: int
    people_max: int
    in_violation_sum: int
    in_violation_max: int

    @classmethod
    def of(cls, people: int, violating: int) -> Tally:
        return cls(1, people, people, violating, violating)


@dataclass(frozen=True)
class VisitRow:
    zone: str  # camera/zone
    left: float
    dwell_s: float


@dataclass(frozen=True)
class EpisodeRow:
    camera: str
    end: float
    duration_s: float
    severity: str | None


@dataclass
class Deltas:
    minutes: dict[tuple[EntityKey, int], MinuteRow] = field(default_factory=dict)
    heat: dict[tuple[str, int, int], list[int]] = field(
        default_factory=dict
    )  # (camera, hour, cell) -> [people, violating]
    visits: list[VisitRow] = field(default_factory=list)
    episodes: list[EpisodeRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.minutes) + len(self.heat) + len(self.visits) + len(self.episodes)


class Rollup:
    """Folds records into deltas until they are taken. `last_sample` (stream, entity) -> time is
    the state that weighs samples; the store keeps it with its offsets."""

    def __init__(self, last_sample: dict[tuple[str, EntityKey], float] | None = None) -> None:
        self.last_sample = last_sample or {}
        self.deltas = Deltas()

    def take(self) -> Deltas:
        deltas, self.deltas = self.deltas, Deltas()
        return deltas

    def add(self, stream: str, record: Json) -> None:
        """Fold one record of the event log's `stream` (a camera id or `_device`) in."""
        t = float(record["t"])
        match record["type"]:
            case "run":
                self.last_sample = {key: v for key, v in self.last_sample.items() if key[0] != stream}
            case "detections":
                self._detections(stream, t, record)
            case "zone":
                key = ("zone", f"{record['camera']}/{record['zone']}")
                self._sample(stream, key, t, Tally.of(record["people"], record["people_in_violation"]))
            case "area":
                key = ("area", record["area"])
                row, weight = self._sample(stream, key, t, Tally.of(record["people"], record["people_in_violation"]))
                row.threshold = max(row.threshold, record["threshold"] or 0)
                if record["over_threshold"]:
                    row.over_s += weight
            case "crossing":
                row = self._row(("line", f"{record['camera']}/{record['line']}"), t)
                if record["direction"] == "in":
                    row.crossed_in += 1
                else:
                    row.crossed_out += 1
            case "zone_visit" if record["state"] == "ended":
                self.deltas.visits.append(VisitRow(f"{record['camera']}/{record['zone']}", t, float(record["dwell_s"])))
            case "zone_visit":
                self._row(("zone", f"{record['camera']}/{record['zone']}"), t).loitering += 1
            case "episode" if record["state"] == "ended":
                self.deltas.episodes.append(
                    EpisodeRow(record["camera"], t, float(record["duration_s"] or 0.0), record.get("severity"))
                )
            case "alert":
                self._row(("area", record["area"]), t).alerts += 1
            case "area_masks":
                self._masks(("area", record["area"]), float(record["minute"]), record)
            case "masks":
                self._masks(("camera", record["camera"]), float(record["minute"]), record)
                for zone, counts in record["zones"].items():
                    self._masks(("zone", f"{record['camera']}/{zone}"), float(record["minute"]), counts)

    def _detections(self, stream: str, t: float, record: Json) -> None:
        people = record["people"]
        violating = sum(1 for person in people if person["violation"])
        tally = Tally(**record["tally"]) if "tally" in record else Tally.of(len(people), violating)
        self._sample(stream, ("camera", record["camera"]), t, tally)
        hour = int(t // HOUR_S)
        for person in people:
            x1, _, x2, y2 = person["box"]
            column, row = int(max(0.0, (x1 + x2) / 2) // HEAT_CELL_PX), int(max(0.0, y2) // HEAT_CELL_PX)
            cell = self.deltas.heat.setdefault((record["camera"], hour, row * HEAT_CELL_BASE + column), [0, 0])
            cell[0] += 1
            cell[1] += 1 if person["violation"] else 0

    def _masks(self, key: EntityKey, minute: float, counts: Json) -> None:
        row = self._row(key, minute)
        row.masked += counts["masked"]
        row.unmasked += counts["unmasked"]
        row.faces_too_small += counts["too_small"]

    def _sample(self, stream: str, key: EntityKey, t: float, tally: Tally) -> tuple[MinuteRow, float]:
        """Add one sample (standing for `tally.frames` frames); the row it went to and the
        seconds it weighs."""
        last = self.last_sample.get((stream, key))
        weight = t - last if last is not None and 0 < t - last <= MAX_GAP_S else 0.0
        self.last_sample[(stream, key)] = t
        row = self._row(key, t)
        row.samples += tally.frames
        row.people_sum += tally.people_sum
        row.people_max = max(row.people_max, tally.people_max)
        row.violating_sum += tally.in_violation_sum
        row.violating_max = max(row.violating_max, tally.in_violation_max)
        row.seconds += weight
        row.violating_person_s += tally.in_violation_sum / tally.frames * weight
        return row, weight

    def _row(self, key: EntityKey, t: float) -> MinuteRow:
        return self.deltas.minutes.setdefault((key, int(t // MINUTE_S)), MinuteRow())
