"""What the hardening against hostile input costs, against a baseline revision, side by side in one
run: loading each shipped profile (`appliance validate`'s work: read, parse, checks, merge,
schema, rules) and the event log taking one sampled frame of 8 people.

    .venv/bin/python bench/hardening.py --baseline 24dd283 [--repeats 5]

The baseline is checked out in a temporary git worktree. Each repeat runs the same snippet in a
fresh process of the baseline tree and of this one, alternately, so machine drift hits both
alike; the figures are medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNIPPET = """
import json, sys, tempfile, time
from pathlib import Path
from appliance.config import load_profile
from appliance.runtime.events import FrameResult, TrackRecord
from appliance.runtime.outputs.eventlog import EventLog

profiles = sorted(Path("profiles").glob("*.yaml"))
load_profile(profiles[0])
started = time.perf_counter()
for _ in range(10):
    for profile in profiles:
        load_profile(profile)
load_ms = (time.perf_counter() - started) * 1000 / (10 * len(profiles))

tracks = tuple(TrackRecord(i, (10.0 * i, 20.0, 10.0 * i + 30, 110.0), 0.9) for i in range(8))
with tempfile.TemporaryDirectory() as folder:
    log = EventLog(Path(folder), retention_days=30, max_disk_mb=100)
    log.start()
    count = 20000
    started = time.perf_counter()
    for index in range(count):
        log.handle(FrameResult("cam", index, index / 10, 8, 2, {}, tracks))
    log.close()
    record_us = (time.perf_counter() - started) * 1e6 / count
print(json.dumps({"load_ms": load_ms, "record_us": record_us}))
"""


def measure(tree: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", SNIPPET], cwd=tree, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
        try:
            runs: dict[str, list[dict[str, float]]] = {"baseline": [], "now": []}
            for repeat in range(args.repeats):
                for name, tree in (("baseline", baseline), ("now", REPO)):
                    runs[name].append(measure(tree))
                print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=True)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}")
    print(f"| measure | baseline {args.baseline} | now | ratio |")
    print("|---|---|---|---|")
    for key, label in (("load_ms", "load a shipped profile (ms)"), ("record_us", "event log, one record (µs)")):
        before = statistics.median(r[key] for r in runs["baseline"])
        after = statistics.median(r[key] for r in runs["now"])
        print(f"| {label} | {before:.2f} | {after:.2f} | {after / before:.2f} |")


if __name__ == "__main__":
    main()
