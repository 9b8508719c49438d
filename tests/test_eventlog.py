"""The local event log: typed JSON lines per camera and day, retention by age and by size."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from appliance.runtime.events import (
    AreaAlert,
    AreaUpdate,
    ConfigChanged,
    EpisodeEvent,
    FrameResult,
    RunEvent,
    RunSummary,
    TrackRecord,
)
from appliance.runtime.outputs.eventlog import EventLog
from appliance.runtime.types import ViolationEpisode


def test_records_are_typed_json_lines_per_camera(tmp_path: Path) -> None:
    log = EventLog(tmp_path, retention_days=30, max_disk_mb=10)
    log.start()
    log.handle(FrameResult("cam", 7, 0.7, 1, 0, {}, (TrackRecord(3, (1.0, 2.0, 30.0, 90.0), 0.9),)))
    log.handle(FrameResult("cam", 8, 0.8, 1, 0, {}, None))  # not a sampled frame: nothing written
    log.handle(EpisodeEvent(ViolationEpisode("cam", (3, 4), 1.0, 31.0, 92.5), "ended"))
    log.close()
    (path,) = (tmp_path / "cam").glob("*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0] == {
        "type": "detections",
        "v": 1,
        "camera": "cam",
        "t": 0.7,
        "frame": 7,
        "people": [{"id": 3, "box": [1.0, 2.0, 30.0, 90.0], "score": 0.9, "violation": False}],
    }
    assert records[1]["type"] == "episode" and records[1]["pair"] == [3, 4]
    assert records[1]["duration_s"] == 30.0 and records[1]["min_distance_cm"] == 92.5
    assert len(records) == 2


def test_each_run_is_marked_and_area_alert_and_config_events_are_kept(tmp_path: Path) -> None:
    """Two runs of a recording append to one day's files: each is marked where it starts and
    ends; areas are sampled like detections, alerts and profile changes all kept."""
    log = EventLog(tmp_path, retention_days=30, max_disk_mb=10, sample_interval_s=1.0)
    log.start()
    for run in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        log.handle(RunEvent("started", run, "/media/vtest.avi"))
        for t in (0.0, 0.5, 1.0):  # video time restarts with each run
            log.handle(FrameResult("cam", int(t * 10), t, 1, 0, {}, (TrackRecord(3, (1.0, 2.0, 30.0, 90.0), 0.9),)))
            log.handle(AreaUpdate("hall", t, 1, 0, 1, 5, False, 1.0))
        log.handle(AreaAlert("hall", "occupancy", 1.0, 6, 0, "6 people, more than the threshold of 5 for 5 s or more"))
        log.handle(ConfigChanged("applied", 1, "api", ("cam",)))
        log.handle(RunEvent("ended", run, "/media/vtest.avi", RunSummary((), {"hall": 1}, str(tmp_path))))
    log.close()
    camera = [json.loads(line) for line in next((tmp_path / "cam").glob("*.jsonl")).read_text().splitlines()]
    device = [json.loads(line) for line in next((tmp_path / "_device").glob("*.jsonl")).read_text().splitlines()]
    marks = [(r["run"], r["state"]) for r in camera if r["type"] == "run"]
    assert marks == [("aaaaaaaaaaaa", "started"), ("aaaaaaaaaaaa", "ended"), ("bbbbbbbbbbbb", "started"),
                     ("bbbbbbbbbbbb", "ended")]  # fmt: skip
    assert [r["type"] for r in camera[:5]] == ["run", "detections", "detections", "detections", "run"]
    assert [r["type"] for r in device].count("area") == 4  # t 0 and 1 of each run, not 0.5
    assert [r["type"] for r in device].count("alert") == 2 and [r["type"] for r in device].count("config") == 2
    assert device[-1]["summary"]["alerts"] == {"hall": 1}


def test_old_files_and_files_beyond_the_budget_are_removed(tmp_path: Path) -> None:
    old = tmp_path / "cam" / "2026-01-01.jsonl"
    old.parent.mkdir()
    old.write_text("{}\n")
    ancient = time.time() - 40 * 86400
    os.utime(old, (ancient, ancient))
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        (tmp_path / "cam" / f"{day}.jsonl").write_bytes(b"x" * 600_000)
    EventLog(tmp_path, retention_days=30, max_disk_mb=1).start()
    assert sorted(p.name for p in (tmp_path / "cam").iterdir()) == ["2026-11-03.jsonl"]
