"""Occupancy alerts of an area hovering at its threshold, before and after the alert rules.

    .venv/bin/python bench/alerts.py [--threshold 6 8]

The appliance runs the default profile on PETS09-S2L1 in historical mode, with one area over the
camera and its occupancy threshold at each `--threshold` (8: the count hovers there; 6: it is
over it for long stretches), twice:

- before: `occupancy_alert: {min_duration_s: 0, hysteresis: 0, cooldown_s: 0}`, an alert on
  every rise above the threshold, as the appliance did before issue 22;
- after: the shipped defaults (5 s over the threshold, 1 person of hysteresis, 60 s cooldown).

It counts the occupancy alerts in the event log and the shortest gap between two of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
RULES = {"before": "{min_duration_s: 0, hysteresis: 0, cooldown_s: 0}", "after": "{}"}


def alert_times(profile: Path, threshold: int, rule: str, folder: Path) -> list[float]:
    site = folder / "site.yaml"
    site.write_text(
        f"extends: {profile.resolve()}\ncameras:\n  - {{id: cam, source: {VIDEO}}}\n"
        f"areas: [{{id: plaza, cameras: [cam], occupancy_threshold: {threshold}, occupancy_alert: {rule}}}]\n"
        f"storage: {{data_dir: {folder}}}\nmetrics: {{enabled: false}}\nmqtt: {{enabled: false}}\n"
        "api: {enabled: false}\nota: {enabled: false}\nlogging: {level: warning}\n"
    )  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "appliance", "run", "--profile", str(site), "--input", str(VIDEO)],
                         cwd=REPO, capture_output=True, text=True, check=False)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"appliance run failed:\n{run.stderr}")
    records = [json.loads(line) for path in (folder / "events").glob("*/*.jsonl") for line in path.open()]
    return sorted(r["t"] for r in records if r["type"] == "alert" and r["kind"] == "occupancy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "x86.yaml", help="the profile to extend")
    parser.add_argument("--threshold", type=int, nargs="+", default=[6, 8], help="the area's occupancy thresholds")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| threshold | rules | occupancy alerts in the 79.5 s video | shortest gap between two |\n|---|---|---|---|")
    for threshold, (name, rule) in itertools.product(args.threshold, RULES.items()):
        with tempfile.TemporaryDirectory() as folder:
            times = alert_times(args.profile, threshold, rule, Path(folder))
        gaps = [b - a for a, b in itertools.pairwise(times)]
        shortest = f"{min(gaps):.1f} s" if gaps else "-"
        print(f"| {threshold} | {name}: occupancy_alert {rule} | {len(times)} | {shortest} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
