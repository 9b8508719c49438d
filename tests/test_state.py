"""The runtime state: camera status from what workers and the supervisor report, area counts,
alerts with their cooldown, readiness."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.config import load_profile
from appliance.config.model import (
    AreaConfig,
    LoiteringAlertConfig,
    OccupancyAlertConfig,
    OccupancyRuleConfig,
    ViolationAlertConfig,
)
from appliance.runtime.analysis.alerts import AreaAlerts
from appliance.runtime.analysis.schedule import WEEKDAYS, threshold_at
from appliance.runtime.events import (
    AreaAlert,
    AreaUpdate,
    CameraLifecycle,
    CameraStatus,
    Event,
    FrameResult,
    WorkerFailed,
    ZoneVisitEvent,
)
from appliance.runtime.state import RuntimeState
from appliance.runtime.types import ZoneVisit
from tests.conftest import WriteFiles

PROFILE = """
device: {id: test}
cameras:
  - {id: a, source: a.avi}
  - {id: b, source: b.avi}
areas:
  - id: hall
    cameras: [a, b]
    occupancy_threshold: 5
    occupancy_alert: {min_duration_s: 0, hysteresis: 1, cooldown_s: 0}
    violation_alert: {min_people: 2, min_duration_s: 2, cooldown_s: 10}
"""
NO_WAIT = OccupancyAlertConfig(min_duration_s=0, hysteresis=0, cooldown_s=0)


def frame(camera: str, t: float, people: int, violating: int = 0, processed_at: float | None = None) -> FrameResult:
    made = time.monotonic() if processed_at is None else processed_at
    return FrameResult(camera, int(t * 10), t, people, violating, {"detect": 0.01}, processed_at=made)


def state_for(write_files: WriteFiles) -> RuntimeState:
    return RuntimeState(load_profile(write_files(p__yaml=PROFILE)))


def test_cameras_go_from_starting_to_online_and_areas_sum_online_cameras(write_files: WriteFiles) -> None:
    state = state_for(write_files)
    for camera in ("a", "b"):
        state.handle(CameraLifecycle("worker_started", camera))
    assert {c.status for c in state.snapshot().cameras.values()} == {"starting"}
    assert not state.snapshot().ready
    derived = state.handle(frame("a", 1.0, 3))
    assert [type(e) for e in derived] == [AreaUpdate]
    state.handle(frame("b", 1.0, 2))
    snapshot = state.snapshot()
    assert snapshot.ready and snapshot.areas["hall"].people == 5
    state.handle(CameraStatus("b", False, "stream ended", 10, 0, 0))
    derived = state.handle(frame("a", 1.1, 3))
    assert isinstance(derived[0], AreaUpdate) and derived[0].people == 3  # b is offline: not counted
    assert state.snapshot().cameras["b"].reason == "stream ended"


def test_failures_and_restarts_show_with_their_reason(write_files: WriteFiles) -> None:
    state = state_for(write_files)
    state.handle(WorkerFailed("a", "model file /m.onnx does not exist"))
    state.handle(CameraLifecycle("worker_restarting", "a", "worker exited with code 3"))
    camera = state.snapshot().cameras["a"]
    assert camera.status == "restarting" and camera.reason == "worker exited with code 3"
    state.handle(CameraLifecycle("camera_failed", "a", "worker exited with code 3"))
    assert state.snapshot().cameras["a"].status == "failed"
    state.handle(CameraStatus("a", True, None, 0, 0, 0))  # a late heartbeat does not revive it
    assert state.snapshot().cameras["a"].status == "failed"
    state.handle(CameraLifecycle("camera_stopped", "a"))
    assert "a" not in state.snapshot().cameras


def test_fps_is_the_workers_rate_even_when_its_frames_arrive_at_once(write_files: WriteFiles) -> None:
    """Frames made 0.1 s apart that reach a supervisor held up (once by a bundle's decompression:
    2391 FPS, which would have become the next OTA health baseline) in one burst."""
    state = state_for(write_files)
    made = time.monotonic() - 3
    for index in range(20):
        state.handle(frame("a", index / 10, 1, processed_at=made + index / 10))
    camera = state.snapshot().cameras["a"]
    assert camera.fps == pytest.approx(10.0) and camera.frames == 20
    summary = state.summary("a")
    assert summary is not None and summary.startswith("camera a: 20 frames in")


def alerts_of(events: list[Event]) -> list[AreaAlert]:
    return [e for e in events if isinstance(e, AreaAlert)]


def test_occupancy_alert_once_per_crossing(write_files: WriteFiles) -> None:
    state = state_for(write_files)
    crossings = [alerts_of(state.handle(frame("a", t, people))) for t, people in
                 [(1, 4), (2, 6), (3, 7), (4, 3), (5, 6)]]  # fmt: skip
    assert [len(a) for a in crossings] == [0, 1, 0, 0, 1]
    assert crossings[1][0].kind == "occupancy" and "threshold of 5" in crossings[1][0].detail


def occupancy_alerts(rule: OccupancyAlertConfig, counts: list[tuple[float, int]]) -> list[float]:
    """The times of the occupancy alerts of an area with threshold 8 over these (time, people)."""
    alerts = AreaAlerts(AreaConfig("hall", ("a",), (), (), "04:00", 8, rule, ViolationAlertConfig(False, 2, 0, 0, 0)))
    return [a.timestamp for t, n in counts for a in alerts.update(AreaUpdate("hall", t, n, 0, 1, 8, n > 8, 1.0))]


def test_an_area_hovering_at_its_threshold_alerts_once() -> None:
    """An area whose threshold is 8, at 8 and 9 in turn every 0.6 s for 105 s: the old rule
    alerted on every rise (87 alerts here; the issue saw 22 in 105 s). With the defaults (5 s
    over, 1 person of hysteresis, 60 s cooldown) a dip to 8 neither ends nor restarts its time
    over the threshold: it alerts once, 5 s after it first went over, and not again until it has
    fallen to 7; falling that far every 10 s, it alerts at most once per cooldown."""
    defaults = OccupancyAlertConfig(min_duration_s=5, hysteresis=1, cooldown_s=60)
    hovering = [(i * 0.6, 9 if i % 2 else 8) for i in range(175)]
    assert occupancy_alerts(defaults, hovering) == [pytest.approx(6.6)]
    assert len(occupancy_alerts(NO_WAIT, hovering)) == 87  # the old behaviour: every rise
    dipping = [(t, 7 if round(t / 0.6) % 17 == 0 else n) for t, n in hovering]  # down to 7 about every 10 s
    alerts = occupancy_alerts(defaults, dipping)
    assert len(alerts) == 2 and alerts[1] - alerts[0] >= 60, alerts


def test_an_occupancy_alert_needs_the_duration_the_hysteresis_and_the_cooldown() -> None:
    rule = OccupancyAlertConfig(min_duration_s=5, hysteresis=2, cooldown_s=30)
    counts = [(0, 9), (4.9, 10), (5, 9), (6, 7), (7, 9), (20, 9), (21, 6), (22, 9), (27, 9), (40, 6), (41, 9),
              (46, 9)]  # fmt: skip
    # 5: over for 5 s; 7-20: over again, but only fell to 7 (not 8 - 2); 27: over 5 s after
    # falling to 6, but within the cooldown; 46: over 5 s, re-armed and cooled.
    assert occupancy_alerts(rule, counts) == [5, 46]


def test_violation_alert_needs_duration_and_respects_the_cooldown() -> None:
    rule = ViolationAlertConfig(enabled=True, min_people=2, min_duration_s=2, cooldown_s=10, clear_after_s=0)
    alerts = AreaAlerts(AreaConfig("hall", ("a",), (), (), "04:00", None, NO_WAIT, rule))

    def at(t: float, violating: int) -> int:
        return len(alerts.update(AreaUpdate("hall", t, 4, violating, 1, None, False, 0.5)))

    assert [at(t, 2) for t in (0, 1, 1.9)] == [0, 0, 0]  # not long enough yet
    assert at(2.0, 2) == 1
    assert [at(t, 3) for t in (3, 6, 11.9)] == [0, 0, 0]  # cooling down
    assert at(12.0, 2) == 1
    assert at(13, 1) == 0 and at(30, 2) == 0 and at(31, 2) == 0 and at(32, 2) == 1  # the clock restarts
    assert at(5, 2) == 0  # a recording started over: no alert from a clock that went back


def test_a_disabled_violation_alert_never_fires() -> None:
    rule = ViolationAlertConfig(enabled=False, min_people=2, min_duration_s=0, cooldown_s=0, clear_after_s=0)
    alerts = AreaAlerts(AreaConfig("hall", ("a",), (), (), "04:00", None, NO_WAIT, rule))
    assert not alerts.update(AreaUpdate("hall", 1, 9, 9, 1, None, False, 0.0))


def test_area_alert_state_survives_an_unrelated_profile_change(write_files: WriteFiles, tmp_path: Path) -> None:
    state = state_for(write_files)
    state.handle(frame("a", 0, 4, 2))
    state.handle(frame("a", 1, 4, 2))
    changed = PROFILE.replace("{id: b, source: b.avi}", "{id: b, source: b.avi, fps_cap: 5}")
    state.set_profile(load_profile(write_files(q__yaml=changed)))
    assert len(alerts_of(state.handle(frame("a", 2, 4, 2)))) == 1


def test_occupancy_rules_follow_weekday_and_local_hour_across_a_daylight_saving_change() -> None:
    """Paris: UTC+1 until 02:00 on Sunday 29 March 2026, UTC+2 after. Weekdays 08:00 to 18:00
    allow 20, nights 22:00 to 06:00 allow 0, other times 5."""
    rules = (
        OccupancyRuleConfig(days=("mon", "tue", "wed", "thu", "fri"), start="08:00", end="18:00", threshold=20),
        OccupancyRuleConfig(days=WEEKDAYS, start="22:00", end="06:00", threshold=0),
    )
    area = AreaConfig("hall", ("a",), (), (), "04:00", 5, NO_WAIT, ViolationAlertConfig(False, 2, 0, 0, 0),
                      occupancy_schedule=rules)  # fmt: skip
    paris = ZoneInfo("Europe/Paris")

    def at(utc: str) -> int | None:
        return threshold_at(area, datetime.fromisoformat(utc).timestamp(), paris)

    assert at("2026-03-27T07:30:00+00:00") == 20  # Friday 08:30 in Paris
    assert at("2026-03-27T06:30:00+00:00") == 5  # Friday 07:30
    assert at("2026-03-28T07:30:00+00:00") == 5  # Saturday 08:30: no weekday rule
    assert at("2026-03-28T21:30:00+00:00") == 0  # Saturday 22:30: the night
    assert at("2026-03-29T03:30:00+00:00") == 0  # Sunday 05:30 (UTC+2 now): the night, which lasted 7 hours
    assert at("2026-03-29T04:00:00+00:00") == 5  # Sunday 06:00 local: the night ended
    assert at("2026-03-30T06:00:00+00:00") == 20  # Monday 08:00 local, UTC+2
    assert at("2026-03-30T05:59:00+00:00") == 5


def test_loitering_in_an_area_s_zones_alerts_at_most_once_per_cooldown() -> None:
    area = AreaConfig("hall", (), ("cam/queue",), (), "04:00", None, NO_WAIT, ViolationAlertConfig(False, 2, 0, 0, 0),
                      loitering_alert=LoiteringAlertConfig(enabled=True, cooldown_s=60))  # fmt: skip
    alerts = AreaAlerts(area)
    raised = [
        alert.timestamp
        for t in (100, 110, 159, 161, 170, 300)
        for alert in alerts.loitering(ZoneVisitEvent(ZoneVisit("cam", "queue", t, t - 30, None), "loitering", t), None)
    ]
    assert raised == [100, 161, 300]
    off = AreaAlerts(replace(area, loitering_alert=LoiteringAlertConfig(enabled=False, cooldown_s=60)))
    assert off.loitering(ZoneVisitEvent(ZoneVisit("cam", "queue", 1, 0, None), "loitering", 30), None) == []


def test_a_short_gap_neither_ends_nor_restarts_a_time_in_violation() -> None:
    rule = ViolationAlertConfig(enabled=True, min_people=2, min_duration_s=5, cooldown_s=60, clear_after_s=2)

    def alerted(counts: list[tuple[float, int]]) -> list[float]:
        alerts = AreaAlerts(AreaConfig("hall", ("a",), (), (), "04:00", None, NO_WAIT, rule))
        return [a.timestamp for t, n in counts for a in alerts.update(AreaUpdate("hall", t, 4, n, 1, None, False, 0.5))]

    flicker = [(t / 10, 0 if t % 15 == 7 else 2) for t in range(70)]  # a frame with nobody close, every 1.5 s
    assert alerted(flicker) == [5.0]
    short_gap = [(0.0, 2), (3.0, 2), (3.5, 0), (4.5, 0), (5.0, 2), (6.0, 2)]  # apart 2 s at most: goes on
    assert alerted(short_gap) == [5.0]
    long_gap = [(0.0, 2), (3.0, 2), (3.5, 0), (5.5, 0), (6.0, 2), (10.0, 2), (11.0, 2)]  # apart 3 s: starts again
    assert alerted(long_gap) == [11.0]
