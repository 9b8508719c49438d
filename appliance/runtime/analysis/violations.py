"""Who is too close: pairs under the threshold, the people involved (not the pair count), and
violation episodes per pair over time, with a minimum duration and hysteresis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from appliance.config.model import DistancingConfig, Severity, SeverityConfig
from appliance.runtime.analysis.distance import Matrix
from appliance.runtime.types import ViolationEpisode

Pair = tuple[int, int]


def pair_distances(track_ids: Sequence[int], matrix: Matrix) -> dict[Pair, float]:
    """Every pair of people (smaller id first) with its distance."""
    rows, columns = np.triu_indices(len(track_ids), k=1)
    return {
        _pair(track_ids[int(r)], track_ids[int(c)]): float(matrix[r, c]) for r, c in zip(rows, columns, strict=True)
    }


def close_pairs(distances: dict[Pair, float], threshold_cm: float) -> dict[Pair, float]:
    return {pair: d for pair, d in distances.items() if d < threshold_cm}


def people_involved(pairs: dict[Pair, float]) -> frozenset[int]:
    """Each person counts once however many others they are close to."""
    return frozenset(track_id for pair in pairs for track_id in pair)


@dataclass
class _PairState:
    first_close: float
    last_close: float
    min_distance: float
    active: bool = False


@dataclass
class EpisodeChanges:
    started: list[ViolationEpisode] = field(default_factory=list)
    ended: list[ViolationEpisode] = field(default_factory=list)


class EpisodeTracker:
    """Turns frame-by-frame closeness into episodes: a pair must stay close `min_duration_s`
    before its episode starts (dated from when it became close), stays close until it is
    `hysteresis_cm` beyond the threshold, and the episode ends only after `gap_s` apart."""

    def __init__(self, camera_id: str, config: DistancingConfig) -> None:
        self.camera_id = camera_id
        self.configure(config)
        self._pairs: dict[Pair, _PairState] = {}

    def configure(self, config: DistancingConfig) -> None:
        """New thresholds, from the next update on; open episodes stay open."""
        self.threshold_cm, self.hysteresis_cm = config.threshold_cm, config.hysteresis_cm
        self.min_duration_s, self.gap_s = config.min_episode_s, config.episode_gap_s
        self.severity = config.severity

    def update(self, timestamp: float, distances: dict[Pair, float]) -> EpisodeChanges:
        changes = EpisodeChanges()
        for pair, distance in distances.items():
            state = self._pairs.get(pair)
            limit = self.threshold_cm + (self.hysteresis_cm if state and state.active else 0.0)
            if distance >= limit:
                continue
            if state is None:
                state = self._pairs[pair] = _PairState(timestamp, timestamp, distance)
            state.last_close, state.min_distance = timestamp, min(state.min_distance, distance)
            if not state.active and timestamp - state.first_close >= self.min_duration_s:
                state.active = True
                changes.started.append(self._episode(pair, state, end=None))
        for pair, state in list(self._pairs.items()):
            if timestamp - state.last_close > self.gap_s:
                del self._pairs[pair]
                if state.active:
                    changes.ended.append(self._episode(pair, state, end=state.last_close))
        return changes

    def finish(self) -> list[ViolationEpisode]:
        """End every open episode (at shutdown or the end of a video)."""
        ended = [self._episode(pair, s, end=s.last_close) for pair, s in self._pairs.items() if s.active]
        self._pairs.clear()
        return ended

    @property
    def open_episodes(self) -> list[ViolationEpisode]:
        return [self._episode(pair, s, end=None) for pair, s in self._pairs.items() if s.active]

    def _episode(self, pair: Pair, state: _PairState, end: float | None) -> ViolationEpisode:
        severity = None if end is None else severity_of(self.severity, end - state.first_close)
        return ViolationEpisode(self.camera_id, pair, state.first_close, end, state.min_distance, severity)


def severity_of(severity: SeverityConfig, duration_s: float) -> Severity | None:
    """An episode's severity by its duration; None when shorter than low_s."""
    levels: tuple[tuple[Severity, float], ...] = (
        ("critical", severity.critical_s), ("high", severity.high_s), ("low", severity.low_s))  # fmt: skip
    return next((name for name, at_least in levels if duration_s >= at_least), None)


def _pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)
