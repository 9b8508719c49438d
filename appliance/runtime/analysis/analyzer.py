"""One camera's analysis per frame: filter, track, measure, find violations and episodes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.config.model import Profile
from appliance.runtime.analysis.distance import DistanceMethod, create_distance_method
from appliance.runtime.analysis.filtering import RegionOfInterest, select_people
from appliance.runtime.analysis.occupancy import CameraCounts, environment_score
from appliance.runtime.analysis.places import CameraPlaces, PlacesFrame
from appliance.runtime.analysis.violations import (
    EpisodeTracker,
    Pair,
    close_pairs,
    pair_distances,
    people_involved,
)
from appliance.runtime.tracking import Tracker, create_tracker, tracking_min_score
from appliance.runtime.types import Detection, Track, ViolationEpisode


@dataclass(frozen=True)
class FrameAnalysis:
    camera_id: str
    timestamp: float
    tracks: list[Track]
    close_pairs: dict[Pair, float]  # pairs under the threshold, with their distance in cm
    people_in_violation: frozenset[int]  # track ids
    episodes_started: list[ViolationEpisode]
    episodes_ended: list[ViolationEpisode]
    places: PlacesFrame  # zones and lines

    @property
    def counts(self) -> CameraCounts:
        return CameraCounts(len(self.tracks), len(self.people_in_violation))

    @property
    def environment_score(self) -> float:
        return environment_score(len(self.tracks), len(self.people_in_violation))


class CameraAnalyzer:
    """The per-camera state between frames: tracker and open episodes."""

    def __init__(self, profile: Profile, camera_id: str) -> None:
        self.camera_id = camera_id
        self.tracker: Tracker = create_tracker(profile.tracker, profile.detector.min_score)
        self.episodes = EpisodeTracker(camera_id, profile.distancing)
        self.places = CameraPlaces(profile.camera(camera_id))
        self.stage_seconds: dict[str, float] = {}
        self.configure(profile)

    def configure(self, profile: Profile) -> None:
        """Take `profile`'s settings for this camera in place: people followed and open episodes
        are kept, unless the tracker's algorithm changed (its tracks then start afresh, with new
        ids)."""
        camera, distancing = profile.camera(self.camera_id), profile.distancing
        self.box_filter = camera.box_filter
        self.roi = RegionOfInterest(camera.roi) if camera.roi else None
        self.min_score = tracking_min_score(profile)
        if profile.tracker.algorithm == self.tracker.config.algorithm:
            self.tracker.configure(profile.tracker, profile.detector.min_score)
        else:
            previous = self.tracker
            self.tracker = create_tracker(profile.tracker, profile.detector.min_score)
            self.tracker.continue_ids(previous)
        method = camera.distance.method or distancing.default_method
        self.distance: DistanceMethod = create_distance_method(
            method, distancing.person_height_cm, camera.distance.calibration
        )
        self.threshold_cm = distancing.threshold_cm
        self.places.configure(camera)
        self.episodes.configure(distancing)

    def process(self, timestamp: float, detections: Sequence[Detection]) -> FrameAnalysis:
        """Analyse one frame; `stage_seconds` then holds how long tracking and analysis took."""
        started = time.perf_counter()
        people = select_people(detections, min_score=self.min_score, box_filter=self.box_filter, roi=self.roi)
        tracks = self.tracker.update(people, timestamp)
        tracked = time.perf_counter()
        distances = pair_distances([t.track_id for t in tracks], self.distance.matrix(tracks))
        close = close_pairs(distances, self.threshold_cm)
        changes = self.episodes.update(timestamp, distances)
        violating = people_involved(close)
        places = self.places.update(timestamp, tracks, violating)
        self.stage_seconds = {"track": tracked - started, "analyse": time.perf_counter() - tracked}
        return FrameAnalysis(
            self.camera_id, timestamp, tracks, close, violating, changes.started, changes.ended, places
        )

    def finish(self) -> tuple[list[ViolationEpisode], PlacesFrame]:
        """End the open episodes and zone visits, at shutdown or the end of a recording."""
        return self.episodes.finish(), self.places.finish()
