"""The history store: its reports against the ground truth, and its speed, memory and size at
30 days of 8 cameras with 4 zones each.

    .venv/bin/python bench/history.py [--profile profiles/x86.yaml] [--days 30] [--cameras 8]

Truth: the real runtime in historical mode (`appliance run --input --start`, the shipped event
log sampling) on both kit sequences; each minute's people mean in the store against the mean
of the ground truth's people (flag-1 boxes) over that minute's frames, and the store's crossings,
episodes and visits against the event log's records of them (no loss between the two).

Scale: a real day is replayed (PETS09-S2L1's event log records, its samples repeated one per
second per camera with the zone samples, its crossings, visits and episodes once an hour) through
the store's own fold into one day of rollups; that
day is then written for every camera, zone, line and area and every day of the period through
the store's writer. Then, in a fresh process (its peak memory is what a report costs): a day's
hourly report, a month's daily report, a zone's month with dwell, a heatmap and a day's chart,
each the median of 5. Ingest: the fold and commit of real records, per record, scaled to 8
cameras x 10 fps (every frame logged) and to the shipped 1 s sampling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2

from appliance.history.reports import periods, report
from appliance.history.rollup import MINUTE_S, Deltas, Rollup
from appliance.history.store import Entity, HistoryReader, HistoryWriter, store_path
from evaluation import load_mot_ground_truth

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = {
    "PETS09-S2L1": ("sequences/PETS09-S2L1/vtest.avi", "sequences/PETS09-S2L1/gt/gt.txt"),
    "TUD-Stadtmitte": ("sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "sequences/TUD-Stadtmitte/gt/gt.txt"),
}
UTC = ZoneInfo("UTC")
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, on a minute boundary
ZONES = ("left", "right", "top", "bottom")
REPEATS = 5


def site_profile(profile: Path, video: Path, width: int, height: int, data_dir: Path) -> str:
    half_w, half_h = width / 2, height / 2
    shapes = {
        "left": [[0, 0], [half_w, 0], [half_w, height], [0, height]],
        "right": [[half_w, 0], [width, 0], [width, height], [half_w, height]],
        "top": [[0, 0], [width, 0], [width, half_h], [0, half_h]],
        "bottom": [[0, half_h], [width, half_h], [width, height], [0, height]],
    }
    zones = "".join(f"      - {{id: {name}, polygon: {shapes[name]}}}\n" for name in ZONES)
    return (
        f"extends: {profile.resolve()}\ncameras:\n  - id: cam\n    source: {video}\n    zones:\n{zones}"
        f"    lines:\n      - {{id: middle, points: [[{half_w}, 0], [{half_w}, {height}]]}}\n"
        "areas: [{id: all, cameras: [cam], occupancy_threshold: 6}]\n"
        f"storage: {{data_dir: {data_dir}}}\n"
        "metrics: {enabled: false}\nmqtt: {enabled: false}\napi: {enabled: false}\nota: {enabled: false}\n"
        "logging: {level: warning}\n"
    )


def truth_rows(sequence: str, profile: Path, folder: Path) -> tuple[list[str], Path]:
    video, gt = SEQUENCES[sequence]
    capture = cv2.VideoCapture(str(DATA / video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    data_dir = folder / sequence
    site = folder / f"{sequence}.yaml"
    site.write_text(site_profile(profile, DATA / video, width, height, data_dir))
    command = ["run", str(site), "--input", str(DATA / video), "--start", START.isoformat()]
    run = subprocess.run([sys.executable, "-m", "appliance", *command], cwd=REPO, capture_output=True, text=True,
                         check=False)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"appliance run failed on {sequence}:\n{run.stderr}")
    records = [json.loads(line) for path in sorted((data_dir / "events").glob("*/*.jsonl"))
               for line in path.read_text().splitlines()]  # fmt: skip
    reader = HistoryReader(store_path(data_dir))
    start = START.timestamp()
    minutes = reader.minutes(Entity("camera", "cam"), start, start + 3600)
    truth = load_mot_ground_truth(DATA / gt)
    true_people: dict[int, list[int]] = {}
    for number in range(1, max(truth) + 1):
        minute = int((start + (number - 1) / fps) // MINUTE_S)
        true_people.setdefault(minute, []).append(sum(1 for box in truth.get(number, []) if box.counts))
    errors = [abs(row.people_sum / row.samples - statistics.mean(true_people[m])) for m, row in minutes if row.samples]
    day = periods(START, START + timedelta(minutes=2), "day", UTC)  # the day of the recording
    [line] = report(reader, Entity("line", "cam/middle"), day)
    [camera] = report(reader, Entity("camera", "cam"), day)
    zones = [report(reader, Entity("zone", f"cam/{z}"), day)[0]["visits"] for z in ZONES]
    logged = Counter(_kind(r) for r in records if r.get("state", "ended") == "ended")
    rows = [
        f"| {sequence} | people mean per minute, {len(errors)} minute(s) | MAE {statistics.mean(errors):.2f} | |",
        f"| {sequence} | crossings in / out | {line['in']} / {line['out']} | "
        f"{logged['crossing/in']} / {logged['crossing/out']} |",
        f"| {sequence} | violation episodes ended | {camera['episodes']} | {logged['episode']} |",
        f"| {sequence} | zone visits ended | {sum(zones)} | {logged['zone_visit']} |",
    ]
    reader.close()
    return rows, data_dir


def _kind(record: dict[str, Any]) -> str:
    return f"{record['type']}/{record['direction']}" if record["type"] == "crossing" else str(record["type"])


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in next(path.glob("*.jsonl")).read_text().splitlines()]


def day_of_deltas(data_dir: Path) -> tuple[Deltas, int]:
    """One day of one camera: the real run's records replayed, one per second, through the fold."""
    records = _records(data_dir / "events" / "cam")
    samples = [r for r in records if r["type"] == "detections"]
    zones = [r for r in records if r["type"] == "zone"]
    events = [r for r in records if r["type"] in ("crossing", "episode", "zone_visit")]
    areas = [r for r in _records(data_dir / "events" / "_device") if r["type"] == "area"]
    rollup, folded, day0 = Rollup(), 0, START.timestamp()
    for second in range(86400):
        index = second % len(samples)
        zone_samples = zones[index * len(ZONES) : (index + 1) * len(ZONES)]
        for record in (samples[index], *zone_samples, areas[index % len(areas)]):
            rollup.add("_device" if record["type"] == "area" else "cam", {**record, "t": day0 + second})
            folded += 1
    for hour in range(24):  # the run's crossings, visits and episodes once an hour (PETS09-S2L1 is a crowd)
        for record in events:
            rollup.add("cam", {**record, "t": record["t"] + hour * 3600})
            folded += 1
    return rollup.take(), folded


def write_period(path: Path, day: Deltas, days: int, cameras: int) -> float:
    """Every camera, zone, line and area of every day; seconds it took."""
    began = time.perf_counter()
    writer = HistoryWriter(path, path.parent / "no-events")
    for number in range(days):
        shift_s = number * 86400
        for camera in range(cameras):
            name = f"cam{camera}"
            deltas = Deltas(
                minutes={(_renamed(key, camera), minute + shift_s // MINUTE_S): row
                         for (key, minute), row in day.minutes.items()},
                heat={(name, hour + number * 24, cell): counts for (_, hour, cell), counts in day.heat.items()},
                visits=[replace(v, zone=_renamed(("zone", v.zone), camera)[1], left=v.left + shift_s)
                        for v in day.visits],
                episodes=[replace(e, camera=name, end=e.end + shift_s) for e in day.episodes],
            )  # fmt: skip
            writer._commit(deltas)
    writer.close()
    return time.perf_counter() - began


def _renamed(key: tuple[str, str], camera: int) -> tuple[str, str]:
    """An entity of the replayed camera as the same entity of camera number `camera`."""
    kind, name = key
    if kind == "camera":
        return kind, f"cam{camera}"
    if kind == "area":
        return kind, f"area{camera % 2}"
    return kind, f"cam{camera}/{name.split('/')[1]}"


def query_child(path: Path, days: int) -> None:
    """Run in a fresh process: the queries' medians, and this process's peak memory."""
    from appliance.history.charts import day_chart, heatmap

    zone = ZoneInfo("UTC")
    reader = HistoryReader(path)
    month_end = START + timedelta(days=days)
    day_hours = periods(START, START + timedelta(days=1), "hour", zone)
    month_days = periods(START, month_end, "day", zone)
    timed: dict[str, Callable[[], object]] = {
        "a day's hourly report (one camera)": lambda: report(reader, Entity("camera", "cam0"), day_hours),
        f"{days} days' daily report (one camera)": lambda: report(reader, Entity("camera", "cam0"), month_days),
        f"{days} days' daily report (one zone, with dwell)": lambda: report(
            reader, Entity("zone", "cam0/left"), month_days
        ),
        "a day's heatmap (PNG)": lambda: heatmap(reader, "cam0", START, START + timedelta(days=1)),
        f"{days} days' heatmap (PNG)": lambda: heatmap(reader, "cam0", START, month_end),
        "a day's chart (PNG)": lambda: day_chart(reader, Entity("area", "area0"), START.date(), zone),
    }
    results = {}
    for name, action in timed.items():
        times = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            action()
            times.append(time.perf_counter() - began)
        results[name] = statistics.median(times)
    results["peak memory (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results))


def ingest_cost(data_dir: Path, folder: Path) -> tuple[float, int]:
    """CPU seconds per record to fold and commit the real run's event log, read from its files."""
    events = folder / "ingest" / "events"
    for path in (data_dir / "events").glob("*/*.jsonl"):
        (events / path.parent.name).mkdir(parents=True, exist_ok=True)
        (events / path.parent.name / path.name).write_bytes(path.read_bytes() * 20)
    lines = sum(p.read_bytes().count(b"\n") for p in events.glob("*/*.jsonl"))
    writer = HistoryWriter(folder / "ingest" / "history.sqlite", events)
    began = time.process_time()
    while not writer.catch_up(max_lines=2000):  # commits as often as the runtime's flushes would
        pass
    writer.close()
    return (time.process_time() - began) / lines, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "x86.yaml", help="the profile to extend")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--query-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_child:
        query_child(args.query_child, args.days)
        return 0
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print("| sequence | figure | store | truth or event log |\n|---|---|---|---|")
        pets_dir = None
        for sequence in SEQUENCES:
            rows, data_dir = truth_rows(sequence, args.profile, folder)
            pets_dir = pets_dir or data_dir
            print("\n".join(rows), flush=True)
        assert pets_dir is not None
        per_record, lines = ingest_cost(pets_dir, folder)
        day, folded = day_of_deltas(pets_dir)
        path = folder / "scale" / "history.sqlite"
        path.parent.mkdir()
        seconds = write_period(path, day, args.days, args.cameras)
        zones = args.cameras * len(ZONES)
        print(f"\nScale: {args.days} days x {args.cameras} cameras x {len(ZONES)} zones ({zones} zones, "
              f"{args.cameras} lines, 2 areas); one day folded from {folded} records, the period written in "
              f"{seconds:.0f} s\n")  # fmt: skip
        print("| figure | value | target |\n|---|---|---|")
        print(f"| store on disk | {path.stat().st_size / 1e6:.0f} MB | under 200 MB |")
        child = subprocess.run([sys.executable, __file__, "--query-child", str(path), "--days", str(args.days)],
                               capture_output=True, text=True, check=True, cwd=REPO)  # fmt: skip
        targets = {"a day's hourly report (one camera)": "under 1 s", "a day's heatmap (PNG)": "under 2 s",
                   "peak memory (MB)": "under 200 MB"}  # fmt: skip
        for name, value in json.loads(child.stdout).items():
            shown = f"{value:.0f} MB" if "memory" in name else f"{value * 1000:.0f} ms"
            target = targets.get(name, "under 5 s" if "report" in name and "days'" in name else "")
            print(f"| {name} | {shown} | {target} |")
        every_frame = per_record * args.cameras * 10 * (1 + len(ZONES))
        sampled = per_record * (args.cameras * (1 + len(ZONES)) + 2)
        print(f"| ingest, per record ({lines} records of the real run) | {per_record * 1e6:.0f} us | |")
        print(f"| ingest at {args.cameras} cameras x 10 fps, every frame logged | {every_frame * 100:.2f} % of a core "
              "| under 1 % |")  # fmt: skip
        print(f"| ingest at {args.cameras} cameras, the shipped 1 s sampling | {sampled * 100:.3f} % of a core | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
