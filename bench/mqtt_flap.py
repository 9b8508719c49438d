"""MQTT messages per minute per entity, before and after rate-limited state.

    .venv/bin/python bench/mqtt_flap.py [--seconds 60]

The appliance runs the default profile on PETS09-S2L1 at the video's own pace (as a live camera,
`fps_cap` 10, an area over all of it) with a real mosquitto on loopback, twice in one run:

- before: `mqtt.state_interval_s: 0`, every change of a camera's or an area's state published at
  once, as before issue 22;
- after: the default (`state_interval_s: 1`).

A subscriber counts the retained state messages per minute on each topic, and the flips of the
camera's "violation" binary sensor: under the old per-frame rule (people_in_violation > 0,
computed from the "before" run, which carries every change) and under the new one (a violation
episode is open).
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
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
BASE = "appliance/bench"


def run(folder: Path, port: int, interval: float, seconds: float) -> dict[str, list[dict[str, object]]]:
    """The state messages by topic (sub-topic under BASE) during `seconds` of the appliance."""
    messages: dict[str, list[dict[str, object]]] = defaultdict(list)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-flap-{interval}")
    client.on_connect = lambda c, *_: c.subscribe(f"{BASE}/+/+/state", 0)
    client.on_message = lambda _c, _u, m: messages[m.topic.removeprefix(BASE + "/")].append(json.loads(m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    profile = folder / f"flap-{interval}.yaml"
    profile.write_text(
        f"extends: {REPO / 'profiles' / 'x86.yaml'}\ndevice: {{id: bench}}\n"
        f"storage: {{data_dir: {folder / f'data-{interval}'}}}\nmetrics: {{enabled: false}}\napi: {{enabled: false}}\n"
        f"ota: {{enabled: false}}\nmqtt: {{host: 127.0.0.1, port: {port}, state_interval_s: {interval}}}\n"
        f"cameras:\n  - {{id: lobby, source: {VIDEO}, fps_cap: 10}}\n"
        "areas: [{id: hall, cameras: [lobby], occupancy_threshold: 5}]\n"
    )
    process = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--profile", str(profile)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(5)  # started, connected, the retained state of the start seen
    for topic in messages:
        messages[topic].clear()
    time.sleep(seconds)
    window = {topic: list(found) for topic, found in messages.items()}
    process.terminate()
    process.wait(30)
    client.disconnect()
    client.loop_stop()
    return window


def flips(values: list[bool]) -> int:
    return sum(a != b for a, b in itertools.pairwise(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="how long each run is counted (default 60)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    minutes = args.seconds / 60
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        broker = Mosquitto(folder).start()
        try:
            before = run(folder, broker.port, 0, args.seconds)
            after = run(folder, broker.port, 1, args.seconds)
        finally:
            broker.stop()
    print("| entity (topic) | before, messages/min | after, messages/min |\n|---|---|---|")
    for topic in sorted(before.keys() | after.keys()):
        print(f"| {topic} | {len(before.get(topic, [])) / minutes:.0f} | {len(after.get(topic, [])) / minutes:.0f} |")
    camera_before, camera_after = before.get("camera/lobby/state", []), after.get("camera/lobby/state", [])
    per_frame = flips([bool(m["people_in_violation"]) for m in camera_before])
    episodes = flips([bool(m["violation"]) for m in camera_after])
    print(f"| violation binary sensor flips (per-frame rule / open episodes) | {per_frame / minutes:.0f} | "
          f"{episodes / minutes:.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
