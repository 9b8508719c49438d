"""The local event log: typed JSON lines per camera and day, retention by age and by size."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from appliance.runtime.events import EpisodeEvent, FrameResult, TrackRecord
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
