"""Crossings of lines and visits of zones, as properties over frame rates and paths."""

from __future__ import annotations

import collections
import itertools
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config.model import (
    BoxFilterConfig,
    CalibrationPoint,
    CameraConfig,
    CameraDistanceConfig,
    LineConfig,
    Point,
    ZoneConfig,
)
from appliance.runtime.analysis.counting import EntranceEstimate, LineTotals
from appliance.runtime.analysis.lines import LineCounter
from appliance.runtime.analysis.places import CameraPlaces
from appliance.runtime.analysis.zones import ZoneTracker
from appliance.runtime.types import Crossing, Track
from tests.conftest import PETS_VIDEO, run_cli
from tests.runtime import RunningAppliance
from tests.test_events import schema_for

DOOR = LineConfig(id="door", points=((100.0, 200.0), (500.0, 200.0)), units="pixels", in_side="left",
                  hysteresis=15.0, min_crossing_s=0.5)  # fmt: skip
ROOM = ZoneConfig(id="room", polygon=((100.0, 100.0), (500.0, 100.0), (500.0, 400.0), (100.0, 400.0)),
                  units="pixels", loitering_s=20.0, exit_after_s=1.0)  # fmt: skip
IN_SIDE_Y, OUT_SIDE_Y = 100.0, 300.0  # walking along the door from left to right, "in" is up


def walk(waypoints: list[tuple[float, Point]], fps: float) -> list[tuple[float, Point]]:
    """Positions sampled at `fps` along straight legs between (time, point) waypoints."""
    samples, t = [], waypoints[0][0]
    for (t0, a), (t1, b) in itertools.pairwise(waypoints):
        while t < t1:
            share = (t - t0) / (t1 - t0)
            samples.append((t, (a[0] + share * (b[0] - a[0]), a[1] + share * (b[1] - a[1]))))
            t += 1 / fps
    return samples


def count(samples: list[tuple[float, Point]], line: LineConfig = DOOR) -> list[Crossing]:
    counter = LineCounter("cam", line)
    crossings = []
    for timestamp, point in samples:
        crossings += counter.update(timestamp, {7: point})
    return crossings + counter.finish()


@settings(max_examples=60, deadline=None)
@given(
    crossings=st.integers(0, 6),
    fps=st.floats(2, 30),
    stay_s=st.floats(0.6, 5),
    x=st.floats(150, 450),
)
def test_a_person_crossing_n_times_counts_n_whatever_the_frame_rate(
    crossings: int, fps: float, stay_s: float, x: float
) -> None:
    """Each stay on a side lasts longer than min_crossing_s and two frames."""
    stay_s = max(stay_s, DOOR.min_crossing_s + 2 / fps)
    waypoints, t = [(0.0, (x, IN_SIDE_Y))], 0.0
    for leg in range(crossings):
        t += stay_s
        waypoints.append((t, waypoints[-1][1]))
        t += 1.0
        waypoints.append((t, (x, OUT_SIDE_Y if leg % 2 == 0 else IN_SIDE_Y)))
    waypoints.append((t + stay_s, waypoints[-1][1]))
    counted = count(walk(waypoints, fps))
    assert [c.direction for c in counted] == ["out" if i % 2 == 0 else "in" for i in range(crossings)]


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.floats(-DOOR.hysteresis, DOOR.hysteresis), min_size=1, max_size=80),
    fps=st.floats(2, 30),
    ends_across=st.booleans(),
)
def test_dithering_on_the_line_counts_nothing_and_a_crossing_once(
    offsets: list[float], fps: float, ends_across: bool
) -> None:
    """Within the hysteresis band, and with brief steps over it, the count only follows where
    the person ends up."""
    samples = [(0.0, (300.0, IN_SIDE_Y))]
    for i, offset in enumerate(offsets):
        samples.append(((i + 1) / fps, (300.0, 200.0 + offset)))
        if i % 7 == 3:  # a step beyond the band, back before min_crossing_s
            samples.append(((i + 1.5) / fps, (300.0, OUT_SIDE_Y)))
    end = samples[-1][0] + 1 / fps
    final = OUT_SIDE_Y if ends_across else IN_SIDE_Y
    samples += [(end + k / fps, (300.0, final)) for k in range(int(fps) + 2)]
    samples.sort(key=lambda sample: sample[0])
    brief = [s for s in samples if s[1][1] == OUT_SIDE_Y and s[0] < end]
    assert all(later[0] - s[0] < DOOR.min_crossing_s for s, later in zip(brief, samples[1:], strict=False))
    assert [c.direction for c in count(samples)] == (["out"] if ends_across else [])


def test_walking_round_the_end_of_a_line_is_no_crossing() -> None:
    around = walk([(0.0, (50.0, IN_SIDE_Y)), (4.0, (50.0, OUT_SIDE_Y)), (6.0, (50.0, OUT_SIDE_Y))], 10)
    assert count(around) == []
    through = walk([(0.0, (120.0, IN_SIDE_Y)), (4.0, (120.0, OUT_SIDE_Y)), (6.0, (120.0, OUT_SIDE_Y))], 10)
    assert [c.direction for c in count(through)] == ["out"]


def test_in_side_right_swaps_the_directions_and_a_crossing_is_dated_when_it_happened() -> None:
    right = LineConfig(**{**DOOR.__dict__, "in_side": "right"})
    samples = walk([(0.0, (300.0, IN_SIDE_Y)), (2.0, (300.0, OUT_SIDE_Y)), (5.0, (300.0, OUT_SIDE_Y))], 10)
    (crossing,) = count(samples, right)
    assert crossing.direction == "in" and 1.0 < crossing.timestamp < 1.3  # beyond the band: y > 215


def test_a_person_lost_from_view_just_after_crossing_is_counted() -> None:
    walked = walk([(0.0, (300.0, IN_SIDE_Y)), (2.0, (300.0, OUT_SIDE_Y))], 5)
    samples = [s for s in walked if s[0] < 1.3]  # gone 1 frame past the band (y > 215 from t = 1.2)
    counter = LineCounter("cam", DOOR)
    crossings = [c for t, p in samples for c in counter.update(t, {7: p})]
    assert crossings == []
    later = counter.update(samples[-1][0] + 10, {})
    assert [c.direction for c in later] == ["out"]


@settings(max_examples=60, deadline=None)
@given(
    fps=st.floats(2, 30),
    stay_s=st.floats(1, 60),
    missed=st.lists(st.integers(0, 1000), max_size=20),
)
def test_a_visit_lasts_as_long_as_the_person_stays_whatever_the_frame_rate_and_missed_frames(
    fps: float, stay_s: float, missed: list[int]
) -> None:
    """Missed frames, up to exit_after_s, do not split a visit; dwell is within one frame of the truth."""
    zone = ZoneTracker("cam", ROOM)
    frames = [k / fps for k in range(int(stay_s * fps) + 1)]
    gaps = {k for k in missed if 0 < k < len(frames) - 1 and k % 10 != 0}  # at most 9 frames in a row
    ended, loitering = [], []
    for k, t in enumerate(frames):
        positions = {} if k in gaps and 9 / fps <= ROOM.exit_after_s else {3: (300.0, 250.0)}
        frame = zone.update(t, positions, violating=())
        ended += [v for v in frame.visits if v.kind == "ended"]
        loitering += [v for v in frame.visits if v.kind == "loitering"]
    ended += zone.update(frames[-1] + 5, {}, violating=()).visits
    assert len(ended) == 1 and ended[0].timestamp == frames[-1]
    assert abs(ended[0].visit.dwell_s(0) - frames[-1]) < 1e-9
    assert len(loitering) == (1 if frames[-1] >= 20.0 else 0)


def test_zone_counts_people_inside_and_those_in_violation() -> None:
    zone = ZoneTracker("cam", ROOM)
    frame = zone.update(0.0, {1: (300.0, 250.0), 2: (320.0, 250.0), 3: (600.0, 250.0)}, violating={2, 3})
    assert (frame.count.people, frame.count.people_in_violation) == (2, 1)
    frame = zone.update(3.0, {1: (300.0, 250.0)}, violating=())
    assert frame.count.dwell_s == (3.0,) and [v.visit.track_id for v in frame.visits] == [2]


PLACES_PROFILE = """
device: {id: places, timezone: Europe/Paris}
detector:
  backend: onnxruntime
  model: {path: @MODEL@}
  threads: 1
cameras:
  - id: cam-a
    source: @VIDEO@
    fps_cap: 5
    zones:
      - {id: left, polygon: [[0, 0], [384, 0], [384, 576], [0, 576]], loitering_s: 20}
    lines:
      - {id: middle, points: [[0, 330], [768, 330]]}
areas:
  - {id: left-side, zones: [cam-a/left], occupancy_threshold: 3}
  - {id: below, entrances: [cam-a/middle]}
storage:
  data_dir: @DATA_DIR@
  event_log: {sample_interval_s: 0}
metrics: {listen: "127.0.0.1:@METRICS_PORT@"}
"""


def test_zones_and_lines_reach_the_event_log_and_the_history_in_a_real_runtime(data: Path, tmp_path: Path) -> None:
    """Historical mode from a minute before the spring change to summer time in Paris: the
    history's reports count exactly what the event log holds."""
    profile = PLACES_PROFILE.replace("@MODEL@", str(data / "models/yolox_nano_onnx/yolox_nano.onnx"))
    running = RunningAppliance(tmp_path, profile.replace("@VIDEO@", str(data / PETS_VIDEO)),
                               extra_args=("--input", str(data / PETS_VIDEO), "--start", "2026-03-29T01:59:00+01:00"),
                               )  # fmt: skip
    try:
        assert running.process.wait(300) == 0, running.log
    finally:
        running.kill()
    records = [json.loads(line) for path in (running.data_dir / "events").glob("*/*.jsonl")
               for line in path.read_text().splitlines()]  # fmt: skip
    by_type = collections.Counter(r["type"] for r in records)
    assert by_type["crossing"] > 0 and by_type["zone"] > 0 and by_type["zone_visit"] > 0, by_type
    for record in records:
        if record["type"] in ("crossing", "zone", "zone_visit", "area"):
            assert not list(schema_for(record["type"]).iter_errors(record)), record
    crossings = [r for r in records if r["type"] == "crossing"]
    ins = sum(r["direction"] == "in" for r in crossings)
    assert crossings[-1]["in_today"] + crossings[-1]["out_today"] == len(crossings)  # video time: one day
    assert crossings[-1]["day"] == "2026-03-29" and crossings[-1]["hour"] == "2026-03-29T03:00:00+02:00"
    below = [r for r in records if r["type"] == "area" and r["area"] == "below"]
    assert below and all(r["estimated_people"] >= 0 for r in below) and ins > 0
    ended = [r for r in records if r["type"] == "zone_visit" and r["state"] == "ended"]
    assert all(r["dwell_s"] == pytest.approx(r["left"] - r["entered"], abs=1e-3) for r in ended)
    assert_history_holds_the_log(running.profile_path, records)


def assert_history_holds_the_log(profile: Path, records: list[dict[str, Any]]) -> None:
    def report(*args: str) -> list[dict[str, Any]]:
        done = run_cli("report", str(profile), *args, "--from", "2026-03-29", "--to", "2026-03-30", "--format", "json")
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)["rows"])

    hours = report("--line", "cam-a/middle", "--every", "hour")
    assert len(hours) == 23 and [h["start"][11:16] for h in hours[1:3]] == ["01:00", "03:00"]
    crossings = collections.Counter(r["direction"] for r in records if r["type"] == "crossing")
    assert (sum(h["in"] for h in hours), sum(h["out"] for h in hours)) == (crossings["in"], crossings["out"])
    assert hours[1]["in"] + hours[1]["out"] > 0 and hours[2]["in"] + hours[2]["out"] > 0  # both sides of 02:00
    [camera] = report("--camera", "cam-a", "--every", "day")
    episodes = [r for r in records if r["type"] == "episode" and r["state"] == "ended"]
    frames = [r for r in records if r["type"] == "detections"]
    assert camera["episodes"] == len(episodes) and camera["people_max"] == max(len(r["people"]) for r in frames)
    assert camera["people_mean"] == pytest.approx(sum(len(r["people"]) for r in frames) / len(frames), abs=1e-3)
    [zone] = report("--zone", "cam-a/left", "--every", "day")
    assert zone["visits"] == sum(r["type"] == "zone_visit" and r["state"] == "ended" for r in records)
    [area] = report("--area", "left-side", "--every", "day")
    assert area["alerts"] == sum(r["type"] == "alert" and r["area"] == "left-side" for r in records)


def test_line_counts_start_again_each_local_day_and_hour_and_the_estimate_at_its_reset_time() -> None:
    paris = ZoneInfo("Europe/Paris")

    def at(local: str) -> float:
        return datetime.fromisoformat(local).replace(tzinfo=paris).timestamp()

    totals = LineTotals(paris)
    totals.add("in", at("2026-03-28T23:10"))
    totals.add("out", at("2026-03-28T23:50"))
    counts = totals.add("in", at("2026-03-29T00:05"))  # a new day in Paris, still the 28th in UTC
    assert (counts.day, counts.in_today, counts.out_today, counts.in_hour) == ("2026-03-29", 1, 0, 1)
    counts = totals.add("in", at("2026-03-29T03:01"))  # the hour after the clocks went forward
    assert counts.hour == "2026-03-29T03:00:00+02:00" and (counts.in_today, counts.in_hour) == (2, 1)
    estimate = EntranceEstimate("04:00", paris)
    for direction in ("in", "in", "in", "out"):
        estimate.add(direction, at("2026-03-29T03:30"))
    assert estimate.at(at("2026-03-29T03:59")) == 2 and estimate.at(at("2026-03-29T04:00")) == 0
    assert estimate.add("out", at("2026-03-29T05:00")) == 0  # never below zero


def test_a_zone_in_floor_centimetres_places_people_by_the_calibration() -> None:
    """Image (x, y) maps to floor (10 x, 10 y) cm; a zone of floor x 0-1000 cm holds image x 0-100."""
    calibration = tuple(
        CalibrationPoint(image=(x, y), floor=(10 * x, 10 * y)) for x, y in ((0, 0), (400, 0), (400, 300), (0, 300))
    )
    floor_zone = replace(ROOM, id="floor", polygon=((0, 0), (1000, 0), (1000, 3000), (0, 3000)), units="floor_cm")
    camera = CameraConfig(
        id="cam", source="x", enabled=True, fps_cap=None, resolution=None, roi=None, tags=(), live_view=False,
        distance=CameraDistanceConfig(calibration=calibration), box_filter=BoxFilterConfig(None, None, None, None),
        zones=(floor_zone,), lines=(),
    )  # fmt: skip
    places = CameraPlaces(camera)
    tracks = [Track(1, (40, 100, 60, 200), 0.9, 5), Track(2, (240, 100, 260, 200), 0.9, 5)]  # feet at x 50, x 250
    assert places.update(0.0, tracks, violating=()).zones[0].people == 1
