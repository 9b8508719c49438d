"""Settings changed on a running appliance: restarts, frames, and how soon each takes effect.

    .venv/bin/python bench/in_place.py [--repeats 5]

The appliance runs the default profile (x86.yaml) with two live cameras (PETS09-S2L1 served over
RTSP at 10 fps: 80 s of video, enough for the default repeats) and its API. Each change goes
through the API (PATCH /profile, PUT calibration), `--repeats` times, alternating two values:

- `distancing.threshold_cm` 10000 and 1: everyone in view is in violation, or nobody. In effect:
  the time from sending the request to `appliance_people_in_violation` of both cameras following
  (every person in view, or none), polled every 20 ms;
- `tracker` (max_lost_s, min_hits), a camera's calibration: in effect when every camera that
  takes it logs "new settings applied in place" (the worker's clock, ms resolution);
- `storage.event_log.retention_days`: nothing for the workers to take.

Then one detector change (`detector.threads`): the cameras restarted, and how long until frames
flow again. Throughout: worker pids, frames per second of each camera, and the loads of each
change in the log ("profile loaded for a change").
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests

from tests.runtime import RunningAppliance, frames
from tests.servers import RtspServer, wait_until

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
CAMERAS = ("cam-a", "cam-b")
PASSWORD = "bench-admin-password"
APPLIED_IN_PLACE = re.compile(r"^(\S+ \S+) INFO \[(\S+)\] appliance\.runtime\.worker: new settings applied in place$",
                              flags=re.MULTILINE)  # fmt: skip
APPLIED = re.compile(r"profile change applied: restarted (.+?), reconfigured (.+?), added")
CALIBRATIONS = (
    [{"image": [102, 540], "floor": [0, 0]}, {"image": [690, 552], "floor": [600, 0]},
     {"image": [610, 215], "floor": [600, 1200]}, {"image": [180, 210], "floor": [0, 1200]}],
    [{"image": [100, 560], "floor": [0, 0]}, {"image": [700, 560], "floor": [700, 0]},
     {"image": [600, 200], "floor": [700, 1500]}, {"image": [170, 200], "floor": [0, 1500]}],
)  # fmt: skip


class Api:
    def __init__(self, appliance: RunningAppliance) -> None:
        self.base = f"http://127.0.0.1:{appliance.api_port}/api/v1"
        login = requests.post(f"{self.base}/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=30)
        login.raise_for_status()
        self.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def change(self, method: str, path: str, body: object) -> dict[str, object]:
        etag = requests.get(f"{self.base}/profile", headers=self.headers, timeout=30).headers["ETag"]
        answer = requests.request(method, f"{self.base}{path}", json=body, headers={**self.headers, "If-Match": etag},
                                  timeout=60)  # fmt: skip
        answer.raise_for_status()
        result: dict[str, object] = answer.json()
        return result


def start(folder: Path, servers: list[RtspServer]) -> tuple[RunningAppliance, Api]:
    cameras = "".join(
        f'  - {{id: {c}, source: "{s.url}", fps_cap: 10}}\n' for c, s in zip(CAMERAS, servers, strict=True)
    )
    profile = (f"extends: {REPO / 'profiles' / 'x86.yaml'}\ndevice: {{id: bench}}\ndetector: {{threads: 1}}\n"
               f"cameras:\n{cameras}areas: [{{id: hall, cameras: [cam-a, cam-b]}}]\n"
               "storage: {data_dir: @DATA_DIR@}\nmetrics: {listen: \"127.0.0.1:@METRICS_PORT@\"}\n"
               "mqtt: {enabled: false}\n")  # fmt: skip
    appliance = RunningAppliance(folder, profile)
    add = [sys.executable, "-m", "appliance", "users", "--profile", str(appliance.profile_path), "add", "admin",
           "--role", "admin", "--password-stdin"]  # fmt: skip
    subprocess.run(add, input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    if not all(appliance.wait_for_metric(frames(c), 20, timeout=120) for c in CAMERAS):
        raise SystemExit(f"the appliance did not start:\n{appliance.log[-3000:]}")
    return appliance, Api(appliance)


def applied_at(log: str, cameras: list[str], after: float) -> float | None:
    """When the last of `cameras` logged taking new settings, after `after` (Unix time)."""
    seen: dict[str, float] = {}
    for stamp, camera in APPLIED_IN_PLACE.findall(log):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if camera in cameras and at >= after - 0.002:
            seen.setdefault(camera, at)
    return max(seen.values()) if len(seen) == len(cameras) else None


def violations_follow(appliance: RunningAppliance, everyone: bool) -> bool:
    metrics = appliance.metrics()
    for camera in CAMERAS:
        people = metrics.get(f'appliance_people{{camera="{camera}"}}', 0)
        in_violation = metrics.get(f'appliance_people_in_violation{{camera="{camera}"}}', 0)
        if (in_violation != people or people < 2) if everyone else in_violation:
            return False
    return True


def last_applied(log: str) -> dict[str, list[str]]:
    """The cameras restarted and reconfigured by the last change applied, from the log."""
    restarted, reconfigured = APPLIED.findall(log)[-1]
    return {"restarted": _ids(restarted), "reconfigured": _ids(reconfigured)}


def _ids(listed: str) -> list[str]:
    return [] if listed == "none" else [str(i) for i in ast.literal_eval(listed)]


def measure(appliance: RunningAppliance, api: Api, repeats: int) -> dict[str, list[dict[str, object]]]:
    """Each change `repeats` times: its outcome and its seconds to take effect."""
    changes: dict[str, Callable[[int], tuple[str, str, object]]] = {
        "distancing.threshold_cm": lambda i: ("PATCH", "/profile", {"distancing": {"threshold_cm": (10000, 1)[i % 2]}}),
        "tracker.*": lambda i: ("PATCH", "/profile", {"tracker": {"max_lost_s": (1, 2)[i % 2],
                                                                  "min_hits": (2, 3)[i % 2]}}),
        "calibration (cam-a)": lambda i: ("PUT", "/cameras/cam-a/calibration", {"points": CALIBRATIONS[i % 2]}),
        "storage.event_log.retention_days": lambda i: ("PATCH", "/profile",
                                                      {"storage": {"event_log": {"retention_days": 20 + i}}}),
    }  # fmt: skip
    results: dict[str, list[dict[str, object]]] = {name: [] for name in changes}
    for name, make in changes.items():
        for i in range(repeats):
            sent = time.time()
            api.change(*make(i))
            answered = time.time()
            outcome = last_applied(appliance.log)
            reconfigured = outcome["reconfigured"]
            if name == "distancing.threshold_cm":
                wait_until(lambda i=i: violations_follow(appliance, everyone=i % 2 == 0), 10, interval=0.02)
                effect: float | None = time.time() - sent
            else:
                wait_until(lambda r=reconfigured, t=sent: not r or applied_at(appliance.log, r, t) is not None, 10)
                at = applied_at(appliance.log, reconfigured, sent) if reconfigured else None
                effect = at - sent if at is not None else None
            results[name].append({"answer": answered - sent, "effect": effect, **outcome})
            time.sleep(1.0)
    return results


def fps_over(appliance: RunningAppliance, seconds: float) -> dict[str, float]:
    before = {c: appliance.metric(frames(c)) for c in CAMERAS}
    time.sleep(seconds)
    return {c: (appliance.metric(frames(c)) - before[c]) / seconds for c in CAMERAS}


def detector_change(appliance: RunningAppliance, api: Api) -> tuple[dict[str, object], float]:
    """A new detector: the outcome, and seconds from the request until both cameras have counted
    two frames more than when the old workers had stopped (the answer, plus 0.3 s for their last
    frames to reach the metrics)."""
    sent = time.time()
    outcome = api.change("PATCH", "/profile", {"detector": {"threads": 2}})
    time.sleep(0.3)
    counts = {c: appliance.metric(frames(c)) for c in CAMERAS}
    wait_until(lambda: all(appliance.metric(frames(c)) >= counts[c] + 2 for c in CAMERAS), 120, interval=0.05)
    return outcome, time.time() - sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="times each change is made (default 5)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    servers = [RtspServer(VIDEO) for _ in CAMERAS]
    with tempfile.TemporaryDirectory() as temporary:
        appliance, api = start(Path(temporary), servers)
        try:
            pids = appliance.worker_pids()
            fps_before = fps_over(appliance, 5)
            results = measure(appliance, api, args.repeats)
            fps_after = fps_over(appliance, 5)
            kept = appliance.worker_pids() == pids
            restarts = sum(appliance.metric(f'appliance_worker_restarts_total{{camera="{c}"}}') for c in CAMERAS)
            loads_before = appliance.log.count("profile loaded for a change from api")
            detector, downtime = detector_change(appliance, api)
            started = re.findall(r"camera (\S+): worker started", appliance.log)
            loads = appliance.log.count("profile loaded for a change from api")
        finally:
            appliance.kill()
            for server in servers:
                server.kill()
    print(
        "| change | times | cameras restarted | cameras taking it in place | answer (median) | "
        "in effect after (median / max) |\n|---|---|---|---|---|---|"
    )
    for name, runs in results.items():
        effects = [r["effect"] for r in runs if isinstance(r["effect"], float)]
        answers = [float(r["answer"]) for r in runs]  # type: ignore[arg-type]
        restarted = sorted({c for r in runs for c in r["restarted"]})  # type: ignore[attr-defined]
        in_place = sorted({c for r in runs for c in r["reconfigured"]})  # type: ignore[attr-defined]
        effect = f"{statistics.median(effects) * 1000:.0f} / {max(effects) * 1000:.0f} ms" if effects else "-"
        print(f"| {name} | {len(runs)} | {', '.join(restarted) or 'none'} | {', '.join(in_place) or 'none'} | "
              f"{statistics.median(answers) * 1000:.0f} ms | {effect} |")  # fmt: skip
    print(
        f"\nWorker pids unchanged over {sum(map(len, results.values()))} changes: {kept}; worker restarts "
        f"counted: {restarts:.0f}; loads in the log: {loads_before} for {sum(map(len, results.values()))} changes"
    )
    print("Frames per second before / after the changes: "
          + ", ".join(f"{c} {fps_before[c]:.1f} / {fps_after[c]:.1f}" for c in CAMERAS))  # fmt: skip
    print(f"Detector change (detector.threads 1 -> 2): restarted {detector['restarted']}, reconfigured "
          f"{detector['reconfigured']}; worker starts per camera {[started.count(c) for c in CAMERAS]}; "
          f"frames again after {downtime:.1f} s; loads {loads - loads_before}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
