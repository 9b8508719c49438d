"""Config API benchmark: the runtime's end-to-end FPS with the API in use against without it.

    .venv/bin/python bench/api.py [--repeats 3]

`appliance run --input` on PETS09-S2L1 (795 frames, as fast as they process), alternately:
- without the API (`api.enabled: false`);
- with it, polled 10 times a second (`/counts`, `/health/ready`, `/profile` in turn) and one
  live view (`live.mjpg`, 5 frames a second, each a JPEG the camera's worker encodes) read for
  the whole run.
FPS from the runtime's own summary line; the median over the repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from tests.servers import free_port

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
POLLED = ("/counts", "/health/ready", "/profile")


def run(folder: Path, api: bool) -> tuple[float, int, int]:
    """(FPS, API requests answered, live-view frames read)."""
    port = free_port()
    profile = folder / f"api-{api}.yaml"
    profile.write_text(
        f"extends: {REPO / 'profiles' / 'x86.yaml'}\nstorage: {{data_dir: {folder / 'data'}}}\n"
        f"metrics: {{enabled: false}}\nmqtt: {{enabled: false}}\nareas: []\n"
        f"cameras:\n  - {{id: lobby, source: {VIDEO}, live_view: true}}\n"
        f"api: {{enabled: {str(api).lower()}, listen: '127.0.0.1:{port}', auth: {{enabled: false}}}}\n"
    )
    command = [sys.executable, "-m", "appliance", "--log-level", "info", "run", "--profile", str(profile),
               "--input", str(VIDEO)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    done = threading.Event()
    counts = {"requests": 0, "frames": 0}
    helpers = [threading.Thread(target=poll, args=(port, done, counts)), threading.Thread(target=view,
               args=(port, done, counts))] if api else []  # fmt: skip
    for helper in helpers:
        helper.start()
    _, stderr = process.communicate(timeout=600)
    done.set()
    for helper in helpers:
        helper.join()
    match = re.search(r"795 frames in [\d.]+ s, ([\d.]+) fps", stderr)
    if match is None:
        raise RuntimeError(stderr[-2000:])
    return float(match.group(1)), counts["requests"], counts["frames"]


def poll(port: int, done: threading.Event, counts: dict[str, int]) -> None:
    base, turn = f"http://127.0.0.1:{port}/api/v1", 0
    while not done.is_set():
        try:
            if requests.get(base + POLLED[turn % len(POLLED)], timeout=2).ok:
                counts["requests"] += 1
        except requests.RequestException:
            pass  # not up yet, or gone
        turn += 1
        time.sleep(0.1)


def view(port: int, done: threading.Event, counts: dict[str, int]) -> None:
    url = f"http://127.0.0.1:{port}/api/v1/cameras/lobby/live.mjpg"
    while not done.is_set():
        try:
            with requests.get(url, stream=True, timeout=5) as stream:
                for chunk in stream.iter_content(chunk_size=None):
                    counts["frames"] += chunk.count(b"--frame")
                    if done.is_set():
                        return
        except requests.RequestException:
            time.sleep(0.2)  # not up yet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind (default 3)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    without, with_api, answered, frames = [], [], [], []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as temporary:
            print(f"bench: repeat {repeat + 1}", file=sys.stderr)
            without.append(run(Path(temporary), api=False)[0])
            fps, requests_answered, frames_read = run(Path(temporary), api=True)
            with_api.append(fps)
            answered.append(requests_answered)
            frames.append(frames_read)
    off, on = statistics.median(without), statistics.median(with_api)
    print("| runtime | FPS (median) | API requests answered | live-view frames read |\n|---|---|---|---|")
    print(f"| without the API | {off:.1f} | | |")
    print(f"| API polled 10/s, one live view | {on:.1f} | {statistics.median(answered):.0f} | "
          f"{statistics.median(frames):.0f} |")  # fmt: skip
    print(f"\nratio {on / off:.3f} (target >= 0.9); per run: without {without}, with {with_api}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
