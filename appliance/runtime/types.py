"""Small typed records that cross stage boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of a camera."""

    camera_id: str
    index: int  # 0-based position in the source's frame sequence
    timestamp: float  # seconds: wall clock for live sources, video time for files
    image: Image  # height x width x 3, BGR
    decode_seconds: float = 0.0  # spent decoding it on the source's own thread (live: CPU time)


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object, in frame pixels."""

    box: Box  # x1, y1, x2, y2
    score: float
    class_id: int

    @property
    def foot_point(self) -> tuple[float, float]:
        """Bottom centre of the box: where the person stands."""
        return (self.box[0] + self.box[2]) / 2, self.box[3]


@dataclass(frozen=True, slots=True)
class Track:
    """A person followed across frames, as seen in the current frame."""

    track_id: int
    box: Box
    score: float
    hits: int  # frames in which the person was detected

    @property
    def foot_point(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, self.box[3]


@dataclass(frozen=True, slots=True)
class ViolationEpisode:
    """Two people closer than the threshold, from `start` to `end` (None while it lasts)."""

    camera_id: str
    pair: tuple[int, int]  # track ids, smaller first
    start: float
    end: float | None
    min_distance_cm: float
    severity: Literal["low", "high", "critical"] | None = None  # by its duration, once it ended

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True)
class Crossing:
    """A person crossed one of a camera's lines."""

    camera_id: str
    line_id: str
    track_id: int
    direction: Literal["in", "out"]
    timestamp: float  # when the person was first seen on the new side


@dataclass(frozen=True, slots=True)
class ZoneVisit:
    """A person's time in a zone: `left` is None while they are still inside."""

    camera_id: str
    zone_id: str
    track_id: int
    entered: float
    left: float | None

    def dwell_s(self, now: float) -> float:
        return (self.left if self.left is not None else now) - self.entered


@dataclass(frozen=True, slots=True)
class ZoneCount:
    """A zone as one frame found it."""

    zone_id: str
    people: int  # foot points inside in this frame
    people_in_violation: int
    dwell_s: tuple[float, ...]  # running time of each visit open now, longest first


@dataclass(frozen=True, slots=True)
class LineCounts:
    """A line's crossings in local time."""

    day: str  # local date, ISO
    hour: str  # local start of the hour, ISO with its UTC offset
    in_today: int
    out_today: int
    in_hour: int
    out_hour: int
