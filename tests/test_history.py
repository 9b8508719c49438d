"""The history store and its reports, charts and heatmaps: against hand-computed values on small
logs with known answers (a time zone with daylight saving), rebuilt, corrupted, read in pieces."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from appliance.geometry import fit_homography
from appliance.history.charts import day_chart, heatmap
from appliance.history.reports import periods, report
from appliance.history.store import Entity, HistoryReader, HistoryUnavailableError, HistoryWriter, store_path
from evaluation import load_mot_ground_truth
from evaluation.truth import calibration_points
from tests.conftest import run_cli

PARIS = ZoneInfo("Europe/Paris")
SPRING, AUTUMN = "2026-03-29", "2026-10-25"  # 23 and 25 hours in Paris


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def detections(camera: str, t: float, people: int, violating: int) -> dict[str, object]:
    boxes = [{"id": i, "box": [100.0 + 50 * i, 100.0, 140.0 + 50 * i, 300.0], "score": 0.9,
              "violation": i < violating} for i in range(people)]  # fmt: skip
    return {"type": "detections", "v": 1, "t": t, "camera": camera, "frame": 0, "people": boxes}


def known_log() -> dict[str, list[dict[str, object]]]:
    """A camera, a zone, a line and an area with answers worked out by hand in the tests."""
    ten = at(f"{SPRING}T10:00:00+02:00")
    cam = [{"type": "run", "v": 1, "t": ten, "run": "r1", "state": "started", "input": None}]
    cam += [detections("cam", ten + i, 2, 1) for i in range(60)]  # 10:00:00-10:00:59: 2 people, 1 too close
    cam += [detections("cam", ten + 60 + i, 4, 0) for i in range(60)]  # 10:01:00-10:01:59: 4 people
    for dwell in (2.0, 4.0, 10.0):
        cam.append({"type": "zone_visit", "v": 1, "t": ten + 30, "camera": "cam", "zone": "door", "state": "ended",
                    "track": 1, "entered": ten + 30 - dwell, "left": ten + 30, "dwell_s": dwell})  # fmt: skip
    cam.append({"type": "zone_visit", "v": 1, "t": ten + 40, "camera": "cam", "zone": "door", "state": "loitering",
                "track": 2, "entered": ten, "left": None, "dwell_s": 40.0})  # fmt: skip
    for duration, severity in ((5.0, None), (20.0, "low"), (45.0, "high"), (70.0, "critical")):
        cam.append({"type": "episode", "v": 1, "t": ten + 100, "camera": "cam", "state": "ended", "pair": [1, 2],
                    "start": ten + 100 - duration, "end": ten + 100, "duration_s": duration,
                    "min_distance_cm": 50.0, "severity": severity})  # fmt: skip
    for text, direction in (("T02:30:00+02:00", "in"), ("T02:30:00+01:00", "in"), ("T02:40:00+01:00", "out")):
        cam.append({"type": "crossing", "v": 1, "t": at(AUTUMN + text), "camera": "cam", "line": "gate", "track": 3,
                    "direction": direction})  # fmt: skip
    noon = at(f"{SPRING}T12:00:00+02:00")
    device = [{"type": "area", "v": 1, "t": noon + i, "area": "hall", "people": 6 if i >= 5 else 3,
               "people_in_violation": 0, "cameras_reporting": 1, "estimated_people": None, "threshold": 5,
               "over_threshold": i >= 5, "environment_score": 0.0} for i in range(15)]  # fmt: skip
    device.append({"type": "alert", "v": 1, "t": noon + 10, "area": "hall", "kind": "occupancy", "people": 6,
                   "people_in_violation": 0, "detail": ""})  # fmt: skip
    return {"cam": cam, "_device": device}


def write_log(data_dir: Path, streams: dict[str, list[dict[str, object]]], day: str = SPRING) -> None:
    for stream, records in streams.items():
        path = data_dir / "events" / stream / f"{day}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as file:
            file.writelines(json.dumps(r) + "\n" for r in records)


def build(data_dir: Path) -> HistoryReader:
    writer = HistoryWriter(store_path(data_dir), data_dir / "events")
    while not writer.catch_up(max_lines=50):  # in slices, as the runtime does
        pass
    writer.close()
    return HistoryReader(store_path(data_dir))


def all_reports(reader: HistoryReader) -> list[object]:
    spring = periods(datetime.fromisoformat(SPRING).replace(tzinfo=PARIS),
                     datetime.fromisoformat("2026-03-30").replace(tzinfo=PARIS), "hour", PARIS)  # fmt: skip
    autumn = periods(datetime.fromisoformat(AUTUMN).replace(tzinfo=PARIS),
                     datetime.fromisoformat("2026-10-26").replace(tzinfo=PARIS), "hour", PARIS)  # fmt: skip
    return [report(reader, entity, spans) for entity in reader.entities() for spans in (spring, autumn)]


@pytest.fixture
def known(tmp_path: Path) -> Path:
    write_log(tmp_path, known_log())
    return tmp_path


def test_reports_match_the_figures_worked_out_by_hand(known: Path) -> None:
    reader = build(known)
    day = periods(datetime(2026, 3, 29, tzinfo=PARIS), datetime(2026, 3, 30, tzinfo=PARIS), "hour", PARIS)
    assert len(day) == 23 and day[2].start.isoformat() == "2026-03-29T03:00:00+02:00"
    ten = next(i for i, span in enumerate(day) if span.start.hour == 10)
    camera = report(reader, Entity("camera", "cam"), day)[ten]
    assert camera["people_mean"] == 3.0 and camera["people_max"] == 4
    assert camera["in_violation_mean"] == 0.5 and camera["in_violation_max"] == 1
    assert camera["violation_person_s"] == 59.0 and camera["observed_s"] == 119.0  # the first sample weighs nothing
    assert (camera["episodes"], camera["episodes_low"], camera["episodes_high"], camera["episodes_critical"]) == (
        4, 1, 1, 1)  # fmt: skip
    zone = report(reader, Entity("zone", "cam/door"), day)[ten]
    assert (zone["visits"], zone["dwell_median_s"], zone["dwell_p90_s"], zone["loitering"]) == (3, 4.0, 8.8, 1)
    noon = next(i for i, span in enumerate(day) if span.start.hour == 12)
    area = report(reader, Entity("area", "hall"), day)[noon]
    assert (area["over_threshold_s"], area["threshold"], area["alerts"], area["people_max"]) == (10.0, 5, 1, 6)
    daily = report(reader, Entity("camera", "cam"), periods(day[0].start, day[-1].end, "day", PARIS))
    assert len(daily) == 1 and daily[0]["people_mean"] == 3.0 and daily[0]["end"] == "2026-03-30T00:00:00+02:00"


def test_the_repeated_hour_of_an_autumn_change_is_reported_twice_and_the_day_has_25_hours(known: Path) -> None:
    reader = build(known)
    day = periods(datetime(2026, 10, 25, tzinfo=PARIS), datetime(2026, 10, 26, tzinfo=PARIS), "hour", PARIS)
    assert len(day) == 25
    rows = report(reader, Entity("line", "cam/gate"), day)
    twos = [(r["start"], r["in"], r["out"]) for r in rows if "T02:" in r["start"]]
    assert twos == [("2026-10-25T02:00:00+02:00", 1, 0), ("2026-10-25T02:00:00+01:00", 1, 1)]
    week = periods(datetime(2026, 10, 25, tzinfo=PARIS), datetime(2026, 10, 26, tzinfo=PARIS), "week", PARIS)
    assert [w.start.isoformat() for w in week] == ["2026-10-19T00:00:00+02:00"]  # the Monday before
    assert week[0].bounds[1] - week[0].bounds[0] == 7 * 86400 + 3600
    assert report(reader, Entity("line", "cam/gate"), week)[0] == {
        "start": "2026-10-19T00:00:00+02:00", "end": "2026-10-26T00:00:00+01:00", "in": 2, "out": 1}  # fmt: skip


def test_a_store_deleted_or_read_in_pieces_is_rebuilt_to_the_same_reports(known: Path, tmp_path: Path) -> None:
    expected = all_reports(build(known))
    store_path(known).unlink()
    assert all_reports(build(known)) == expected
    pieces = tmp_path / "pieces"
    lines = (known / "events" / "cam" / f"{SPRING}.jsonl").read_bytes()
    target = pieces / "events" / "cam" / f"{SPRING}.jsonl"
    target.parent.mkdir(parents=True)
    (pieces / "events" / "_device").mkdir()
    (pieces / "events" / "_device" / f"{SPRING}.jsonl").write_bytes(
        (known / "events" / "_device" / f"{SPRING}.jsonl").read_bytes()
    )
    for cut in (len(lines) // 3, len(lines) // 3 + 17, len(lines)):  # the second cut ends half way into a line
        target.write_bytes(lines[:cut])
        build(pieces).close()
    assert all_reports(build(pieces)) == expected


def test_late_events_land_in_the_minute_they_happened(known: Path) -> None:
    build(known).close()
    early = at(f"{SPRING}T08:15:00+02:00")
    write_log(known, {"cam": [detections("cam", early, 7, 0)]})
    reader = build(known)
    rows = reader.minutes(Entity("camera", "cam"), early - 60, early + 60)
    assert [(m * 60, r.people_max) for m, r in rows] == [(early, 7)]


def test_a_corrupt_store_is_never_served_and_is_rebuilt(known: Path) -> None:
    expected = all_reports(build(known))
    path = store_path(known)
    with path.open("r+b") as store:
        store.seek(4096)
        store.write(b"\xde\xad" * 4096)
    with pytest.raises(HistoryUnavailableError):
        all_reports(HistoryReader(path))
    assert all_reports(build(known)) == expected
    assert len(list(path.parent.glob("history.sqlite.unusable-*"))) == 1
    assert run_cli("history", "--profile", str(known / "p.yaml"), "status").returncode == 2  # no such profile


def test_another_version_of_the_store_is_set_aside(known: Path) -> None:
    expected = all_reports(build(known))
    with sqlite3.connect(store_path(known)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryUnavailableError, match="schema version 99"):
        HistoryReader(store_path(known))
    assert all_reports(build(known)) == expected


def test_retention_drops_old_days_and_the_size_budget_the_oldest(known: Path) -> None:
    build(known).close()
    writer = HistoryWriter(store_path(known), known / "events")
    writer.prune(retention_days=30, max_bytes=10**9, now=at("2026-10-26T00:00:00+01:00"))
    writer.close()
    reader = HistoryReader(store_path(known))
    assert not reader.minutes(Entity("camera", "cam"), at(f"{SPRING}T00:00+02:00"), at("2026-03-30T00:00+02:00"))
    assert len(reader.minutes(Entity("line", "cam/gate"), at(f"{AUTUMN}T00:00+02:00"), at("2026-10-26T00:00+01:00")))
    writer = HistoryWriter(store_path(known), known / "events")
    writer.prune(retention_days=3650, max_bytes=1)
    assert writer.db.execute("SELECT count(*) FROM minute").fetchone()[0] == 0
    writer.close()


def test_one_writer_at_a_time(known: Path) -> None:
    writer = HistoryWriter(store_path(known), known / "events")
    try:
        with pytest.raises(HistoryUnavailableError, match="another process"):
            HistoryWriter(store_path(known), known / "events")
    finally:
        writer.close()


def test_the_report_command_refuses_a_range_too_long_and_an_unknown_entity(known: Path) -> None:
    profile = known / "site.yaml"
    settings = f"storage: {{data_dir: {known}, history: {{max_query_days: 31}}}}\n"
    profile.write_text("device: {id: site, timezone: Europe/Paris}\n" + settings)
    csv = run_cli(
        "report", str(profile), "--line", "cam/gate", "--from", AUTUMN, "--to", "2026-10-26", "--format", "csv"
    )
    assert csv.returncode == 0, csv.stderr
    rows = csv.stdout.splitlines()
    assert rows[0] == "start,end,in,out" and len(rows) == 26 and "2026-10-25T02:00:00+01:00" in csv.stdout
    long = run_cli("report", str(profile), "--area", "hall", "--from", SPRING, "--to", AUTUMN)
    assert long.returncode == 2 and "at most 31" in long.stderr and "max_query_days" in long.stderr
    unknown = run_cli("report", str(profile), "--zone", "cam/nowhere", "--from", SPRING, "--to", "2026-03-30")
    assert unknown.returncode == 2 and "no zone 'cam/nowhere'" in unknown.stderr and "cam/door" in unknown.stderr
    backwards = run_cli("report", str(profile), "--camera", "cam", "--from", AUTUMN, "--to", SPRING)
    assert backwards.returncode == 2 and "before it starts" in backwards.stderr


def png(data: bytes) -> np.ndarray:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


HUES = {  # (B, G, R) pixels of each series: people blue, in violation red, time over the threshold orange
    "people": lambda b, g, r: b > r + 60,
    "in violation": lambda b, g, r: (r > 150) & (g < 100) & (b < 100),
    "over threshold": lambda b, g, r: (r > 200) & (r - b > 40) & (g > 150),
}


def test_a_day_chart_draws_what_was_recorded(known: Path, tmp_path: Path) -> None:
    reader = build(known)
    chart = day_chart(reader, Entity("area", "hall"), datetime(2026, 3, 29).date(), PARIS)
    (tmp_path / "chart-hall.png").write_bytes(chart)  # an artefact to look at
    drawn = png(chart)
    empty = png(day_chart(reader, Entity("area", "hall"), datetime(2026, 3, 28).date(), PARIS))
    for series, hue in HUES.items():  # the legend shows each colour in both
        channels = [image.astype(int).transpose(2, 0, 1) for image in (drawn, empty)]
        assert np.count_nonzero(hue(*channels[0])) > np.count_nonzero(hue(*channels[1])) + 20, series
    png(day_chart(reader, Entity("line", "cam/gate"), datetime(2026, 10, 25).date(), PARIS))


def test_a_heatmap_is_hot_where_the_ground_truth_people_stood(data: Path, tmp_path: Path) -> None:
    """PETS09-S2L1's true feet, as sampled detections: drawn over a plain background of the
    frame's size, the pixels that change are where those people stood (left or right half)."""
    truth = load_mot_ground_truth(data / "sequences/PETS09-S2L1/gt/gt.txt")
    start = at(f"{SPRING}T10:00:00+02:00")
    green = np.array([0, 200, 0], np.uint8)  # a background no part of the picture but the image has
    width, background = 768, np.tile(green, (576, 768, 1))
    changed = {}
    for half, keep in (("left", lambda x: x < width / 2), ("right", lambda x: x >= width / 2)):
        folder = tmp_path / half
        records = []
        for number, boxes in sorted(truth.items()):
            people = [{"id": b.track_id, "box": list(b.box), "score": 1.0, "violation": False}
                      for b in boxes if b.counts and keep((b.box[0] + b.box[2]) / 2)]  # fmt: skip
            records.append({"type": "detections", "v": 1, "t": start + number / 7, "camera": "cam", "frame": number,
                            "people": people})  # fmt: skip
        write_log(folder, {"cam": records})
        reader = build(folder)
        window = (datetime.fromtimestamp(start, PARIS), datetime.fromtimestamp(start + 3600, PARIS))
        hot = png(heatmap(reader, "cam", *window, background=background))
        floor = heatmap(reader, "cam", *window, floor=fit_homography(*zip(*calibration_points(truth), strict=True)))
        (tmp_path / f"heatmap-{half}-floor.png").write_bytes(floor)
        assert png(floor).shape[0] > 100
        reader.close()
        (tmp_path / f"heatmap-{half}.png").write_bytes(cv2.imencode(".png", hot)[1].tobytes())
        plain = np.all(hot == green, axis=2)  # the background left as it was
        columns = np.flatnonzero(plain.any(axis=0))
        plot_left, plot_right = columns.min(), columns.max()  # the image's extent in the picture
        heated = ~plain[:, plot_left : plot_right + 1] & plain[:, plot_left : plot_right + 1].any(axis=1)[:, None]
        changed[half] = (np.flatnonzero(heated.any(axis=0)) / (plot_right - plot_left)) * width
    assert changed["left"].max() <= width / 2 + 32 and changed["right"].min() >= width / 2 - 32
    assert len(changed["left"]) > 50 and len(changed["right"]) > 50


def test_a_sample_with_a_tally_stands_for_every_frame_since_the_previous_one(tmp_path: Path) -> None:
    t = at(f"{SPRING}T11:00:00+02:00")
    tallied = {**detections("cam", t + 1, 2, 0), "tally": {"frames": 10, "people_sum": 50, "people_max": 9,
                                                          "in_violation_sum": 20, "in_violation_max": 4}}  # fmt: skip
    write_log(tmp_path, {"cam": [detections("cam", t, 1, 1), tallied]})
    [(_, row)] = build(tmp_path).minutes(Entity("camera", "cam"), t, t + 60)
    assert (row.samples, row.people_sum, row.people_max, row.violating_max) == (11, 51, 9, 4)
    assert row.violating_person_s == 2.0  # 20 / 10 frames in violation on average, for the 1 s since the last
