"""Occupancy per camera and per area (an area spans cameras), against thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from appliance.config.model import AreaConfig
from appliance.runtime.events import AreaUpdate


@dataclass(frozen=True, slots=True)
class CameraCounts:
    people: int
    people_in_violation: int


def environment_score(people: int, people_in_violation: int) -> float:
    """Share of the people present who keep their distance: 1.0 when nobody is too close
    (or nobody is there), 0.0 when everybody is."""
    return 1.0 if people == 0 else 1.0 - people_in_violation / people


def area_status(
    area: AreaConfig,
    cameras: Mapping[str, CameraCounts],
    *,
    threshold: int | None,
    timestamp: float = 0.0,
    zones: Sequence[CameraCounts] = (),
    estimated_people: int | None = None,
) -> AreaUpdate:
    """Sum the counts of the area's cameras that are reporting, and of its zones; against the
    threshold in force (schedule.threshold_at) goes the estimate from its entrances where it has
    some."""
    reporting = [cameras[c] for c in area.cameras if c in cameras]
    people = sum(c.people for c in (*reporting, *zones))
    violating = sum(c.people_in_violation for c in (*reporting, *zones))
    occupancy = people if estimated_people is None else estimated_people
    return AreaUpdate(
        area.id,
        timestamp,
        people,
        violating,
        len(reporting),
        threshold,
        threshold is not None and occupancy > threshold,
        environment_score(people, violating),
        estimated_people,
    )
