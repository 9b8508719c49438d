"""Violations count people, not pairs; episodes span time with a minimum duration and hysteresis."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from appliance.config import load_profile
from appliance.config.model import (
    AreaConfig,
    DistancingConfig,
    OccupancyAlertConfig,
    SeverityConfig,
    ViolationAlertConfig,
)
from appliance.runtime.analysis.analyzer import CameraAnalyzer, FrameAnalysis
from appliance.runtime.analysis.occupancy import CameraCounts, area_status, environment_score
from appliance.runtime.analysis.violations import (
    EpisodeTracker,
    close_pairs,
    pair_distances,
    people_involved,
    severity_of,
)
from appliance.runtime.types import Detection
from tests.conftest import PROFILES

FPS = 10


def tracker(min_duration_s: float = 1.0, gap_s: float = 2.0, hysteresis_cm: float = 20.0) -> EpisodeTracker:
    return EpisodeTracker("cam", distancing(min_duration_s, gap_s, hysteresis_cm))


def distancing(min_duration_s: float, gap_s: float, hysteresis_cm: float) -> DistancingConfig:
    return DistancingConfig(default_method="center_points", threshold_cm=150.0, person_height_cm=170.0,
                            min_episode_s=min_duration_s, episode_gap_s=gap_s, hysteresis_cm=hysteresis_cm,
                            severity=SeverityConfig(low_s=10, high_s=30, critical_s=60))  # fmt: skip


def run(episodes: EpisodeTracker, distances: list[float]) -> tuple[list, list]:  # type: ignore[type-arg]
    started, ended = [], []
    for frame, distance in enumerate(distances):
        changes = episodes.update(frame / FPS, {(1, 2): distance} if distance >= 0 else {})
        started += changes.started
        ended += changes.ended
    return started, ended + episodes.finish()


def test_three_people_close_together_are_three_people_in_three_pairs() -> None:
    ids = [7, 3, 9]
    matrix = np.array([[0, 100, 120], [100, 0, 90], [120, 90, 0]], dtype=float)
    close = close_pairs(pair_distances(ids, matrix), 150)
    assert set(close) == {(3, 7), (7, 9), (3, 9)}
    assert people_involved(close) == {3, 7, 9}


def test_two_people_close_for_30_seconds_are_one_episode_not_300_hits() -> None:
    started, ended = run(tracker(), [100.0] * (30 * FPS))
    assert len(started) == 1 and len(ended) == 1
    assert ended[0].start == 0.0
    assert ended[0].duration == (30 * FPS - 1) / FPS
    assert ended[0].min_distance_cm == 100.0


def test_a_brief_contact_is_no_episode() -> None:
    started, ended = run(tracker(min_duration_s=1.0), [100.0] * 5 + [300.0] * 50)
    assert started == [] and ended == []


def test_a_short_separation_or_a_lost_detection_does_not_split_an_episode() -> None:
    distances = [100.0] * 30 + [300.0] * 10 + [-1] * 5 + [100.0] * 30  # apart 1 s, then unseen 0.5 s
    started, ended = run(tracker(gap_s=2.0), distances)
    assert len(started) == 1 and len(ended) == 1
    assert ended[0].duration == 7.4


def test_hysteresis_keeps_a_pair_hovering_at_the_threshold_in_one_episode() -> None:
    hovering = [140.0, 160.0] * 50  # under, then just over the threshold, every other frame
    with_hysteresis, _ = run(tracker(gap_s=0.0, hysteresis_cm=20.0, min_duration_s=0.0), hovering)
    without, _ = run(tracker(gap_s=0.0, hysteresis_cm=0.0, min_duration_s=0.0), hovering)
    assert len(with_hysteresis) == 1
    assert len(without) == 50


def test_episodes_end_after_the_gap_and_a_new_one_can_start() -> None:
    started, ended = run(tracker(gap_s=1.0), [100.0] * 20 + [300.0] * 20 + [100.0] * 20)
    assert len(started) == 2 and len(ended) == 2
    assert ended[0].end is not None and ended[0].end < ended[1].start


def test_area_occupancy_sums_its_reporting_cameras_against_the_threshold() -> None:
    area = AreaConfig(
        "hall",
        ("a", "b", "c"),
        (),
        (),
        "04:00",
        10,
        OccupancyAlertConfig(5, 1, 60),
        ViolationAlertConfig(True, 2, 5, 60, 2),
    )
    cameras = {"a": CameraCounts(6, 2), "b": CameraCounts(5, 0), "other": CameraCounts(9, 9)}
    status = area_status(area, cameras, threshold=area.occupancy_threshold)
    assert (status.people, status.people_in_violation, status.cameras_reporting) == (11, 2, 2)
    assert status.over_threshold
    assert status.environment_score == 1 - 2 / 11


def test_environment_score_is_one_when_nobody_is_there() -> None:
    assert environment_score(0, 0) == 1.0
    assert environment_score(4, 4) == 0.0


def test_new_settings_keep_the_people_followed_and_the_open_episodes() -> None:
    """What a worker does with a profile change it takes in place (CameraAnalyzer.configure)."""
    profile = load_profile(PROFILES / "x86.yaml").profile
    analyzer = CameraAnalyzer(profile, "lobby")
    two_close = [Detection((300, 200, 340, 300), 0.9, 0), Detection((350, 200, 390, 300), 0.9, 0)]
    frames = iter(range(1000))

    def step(count: int) -> FrameAnalysis:
        for _ in range(count):
            analysis = analyzer.process(next(frames) / FPS, two_close)
        return analysis

    followed = {t.track_id for t in step(20).tracks}
    assert len(followed) == 2 and len(analyzer.episodes.open_episodes) == 1
    tracker = replace(profile.tracker, max_lost_s=1.0, min_hits=2)
    analyzer.configure(replace(profile, tracker=tracker, distancing=replace(profile.distancing, threshold_cm=200)))
    assert {t.track_id for t in step(1).tracks} == followed and len(analyzer.episodes.open_episodes) == 1
    assert analyzer.threshold_cm == 200 and analyzer.tracker.config.min_hits == 2
    analyzer.configure(replace(profile, tracker=replace(tracker, algorithm="iou")))  # a new tracker: new people
    assert min(t.track_id for t in step(5).tracks) > max(followed)
    analyzer.configure(replace(profile, distancing=replace(profile.distancing, threshold_cm=1)))
    assert not step(1).people_in_violation


def test_an_ended_episode_has_a_severity_by_its_duration() -> None:
    grades = SeverityConfig(low_s=10, high_s=30, critical_s=60)
    graded = [severity_of(grades, d) for d in (9.9, 10, 29.9, 30, 60, 3600)]
    assert graded == [None, "low", "low", "high", "critical", "critical"]
    started, ended = run(tracker(), [100.0] * (FPS * 35) + [400.0] * (FPS * 3))
    assert [e.severity for e in started] == [None] and [e.severity for e in ended] == ["high"]
