"""How long the command line takes to answer: `appliance --help` and `appliance validate` of a
shipped profile, each the median of 5 runs in a fresh process (wall time, as a user waits).

    .venv/bin/python bench/cli.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "appliance --help": ["--help"],
    "appliance validate profiles/x86.yaml": ["validate", str(REPO / "profiles" / "x86.yaml")],
    "appliance ota --help": ["ota", "--help"],
}
TARGET_S = 0.3


def wall_seconds(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "appliance", *arguments], capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| command | median wall time | runs | target |\n|---|---|---|---|")
    for name, arguments in COMMANDS.items():
        times = [wall_seconds(arguments) for _ in range(args.repeats)]
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"| `{name}` | {statistics.median(times):.2f} s | {runs} | <= {TARGET_S} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
