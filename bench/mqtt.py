"""MQTT benchmark against a real mosquitto on loopback.

    .venv/bin/python bench/mqtt.py [--events 2000] [--spool 10000] [--repeats 3]

- latency: events handed to the runtime's bus as the supervisor's loop does (one hand-over per
  event, at 200 events a second) until a subscriber has them: p50 and p99. The path is the whole
  MQTT one: bus, the output's thread, the spool (insert, then delete on the broker's
  acknowledgement), paho, the broker, the subscriber.
- spool drain: 10,000 episode events queued while the broker is away, then delivered once it is
  back, against a plain paho loop publishing the same payloads at QoS 1 on the same broker in
  the same run: events per second until the subscriber has them all.
- FPS: `appliance run --input` on PETS09-S2L1 (795 frames) with MQTT on and off, alternating,
  median of the repeats.
"""

from __future__ import annotations

import argparse
import json
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

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from appliance.config import load_profile
from appliance.runtime.bus import EventBus
from appliance.runtime.changes import ProfileChanges
from appliance.runtime.commands import Dispatcher
from appliance.runtime.events import EpisodeEvent
from appliance.runtime.outputs.mqtt import MqttOutput
from appliance.runtime.serialize import to_json
from appliance.runtime.state import RuntimeState
from appliance.runtime.types import ViolationEpisode
from tests.servers import wait_until
from tests.servers.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
EPISODES = "appliance/bench/camera/cam/episode"


class Arrivals:
    """A subscriber noting when each episode (by its pair) arrived."""

    def __init__(self, port: int, topic: str) -> None:
        self.times: dict[tuple[int, int], float] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        self.client.on_connect = lambda client, *_: client.subscribe(topic, 1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        pair = tuple(json.loads(message.payload)["pair"])
        self.times.setdefault((pair[0], pair[1]), time.perf_counter())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def profile(folder: Path, port: int) -> Path:
    path = folder / "bench.yaml"
    path.write_text(
        f"device: {{id: bench}}\nstorage: {{data_dir: {folder / 'data'}}}\n"
        f"mqtt: {{enabled: true, host: 127.0.0.1, port: {port}, discovery: {{enabled: false}}}}\n"
    )
    return path


def episode(number: int) -> EpisodeEvent:
    return EpisodeEvent(ViolationEpisode("cam", (number, number + 1), float(number), None, 120.0), "started")


def start_output(folder: Path, port: int) -> EventBus:
    loaded = load_profile(profile(folder, port))
    state = RuntimeState(loaded)
    bus = EventBus(state)
    dispatcher = Dispatcher(ProfileChanges(loaded.path, lambda: loaded), lambda _camera: False)
    bus.add(MqttOutput(loaded, state, dispatcher))
    bus.start()
    return bus


def latency(folder: Path, events: int) -> tuple[float, float]:
    broker = Mosquitto(folder).start()
    arrivals = Arrivals(broker.port, EPISODES)
    bus = start_output(folder, broker.port)
    try:
        time.sleep(1)  # connected
        sent: dict[tuple[int, int], float] = {}
        for number in range(0, 2 * events, 2):
            sent[(number, number + 1)] = time.perf_counter()
            bus.publish(episode(number))
            bus.hand_over()
            time.sleep(0.005)
        wait_until(lambda: len(arrivals.times) >= events, 30)
        delays = sorted(1000 * (arrivals.times[pair] - sent[pair]) for pair in sent if pair in arrivals.times)
        if len(delays) < events:
            raise RuntimeError(f"only {len(delays)} of {events} events arrived")
        return statistics.median(delays), delays[int(0.99 * len(delays)) - 1]
    finally:
        bus.close(5)
        arrivals.close()
        broker.stop()


def spool_drain(folder: Path, count: int) -> tuple[float, float]:
    """(spooled events per second, plain paho QoS-1 messages per second)."""
    broker = Mosquitto(folder)  # not started: the outage
    bus = start_output(folder, broker.port)
    for number in range(0, 2 * count, 2):
        bus.publish(episode(number))
        if number % 200 == 0:
            bus.hand_over()
    bus.hand_over()
    time.sleep(2)
    broker.start()
    arrivals = Arrivals(broker.port, EPISODES)
    try:
        if not wait_until(lambda: len(arrivals.times) >= 1, 30):
            raise RuntimeError("nothing arrived from the spool")
        started = min(arrivals.times.values())  # the output reconnects within its backoff: from its first
        if not wait_until(lambda: len(arrivals.times) >= count, 120):
            raise RuntimeError(f"only {len(arrivals.times)} of {count} spooled events arrived")
        spooled_rate = (count - 1) / (max(arrivals.times.values()) - started)
    finally:
        bus.close(5)
        arrivals.close()
    plain_rate = plain_paho(broker.port, count, json.dumps(to_json(episode(1)) | {"seq": 1}))
    broker.stop()
    return spooled_rate, plain_rate


def plain_paho(port: int, count: int, payload: str) -> float:
    """A bare paho loop: publish every message at QoS 1, until the subscriber has them all."""
    received = threading.Event()
    seen = 0

    def on_message(*_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            received.set()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plain-subscriber")
    subscriber.on_connect = lambda client, *_: client.subscribe("bench/plain", 1)
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", port)
    subscriber.loop_start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plain-publisher")
    publisher.max_inflight_messages_set(100)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    time.sleep(1)
    started = time.perf_counter()
    for _ in range(count):
        publisher.publish("bench/plain", payload, qos=1)
    received.wait(120)
    elapsed = time.perf_counter() - started
    for client in (publisher, subscriber):
        client.disconnect()
        client.loop_stop()
    return count / elapsed


def fps(folder: Path, mqtt_on: bool, port: int) -> float:
    path = folder / f"fps-{mqtt_on}.yaml"
    path.write_text(
        f"extends: {REPO / 'profiles' / 'x86.yaml'}\nstorage: {{data_dir: {folder / 'fps-data'}}}\n"
        f"metrics: {{enabled: false}}\nmqtt: {{enabled: {str(mqtt_on).lower()}, host: 127.0.0.1, port: {port}}}\n"
        f"cameras:\n  - {{id: lobby, source: {VIDEO}}}\nareas: []\n"
    )
    command = ["appliance", "--log-level", "info", "run", "--profile", str(path), "--input", str(VIDEO)]
    result = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, check=True)
    match = re.search(r"795 frames in [\d.]+ s, ([\d.]+) fps", result.stderr)
    if match is None:
        raise RuntimeError(result.stderr[-2000:])
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="events for the latency (default 2000)")
    parser.add_argument("--spool", type=int, default=10_000, help="events queued during the outage (default 10000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default 3)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    latencies, drains, on, off = [], [], [], []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            for part in ("latency", "drain"):
                (folder / part).mkdir()
            print(f"bench: repeat {repeat + 1}: latency ...", file=sys.stderr)
            latencies.append(latency(folder / "latency", args.events))
            print(f"bench: repeat {repeat + 1}: spool drain ...", file=sys.stderr)
            drains.append(spool_drain(folder / "drain", args.spool))
            print(f"bench: repeat {repeat + 1}: FPS with MQTT on and off ...", file=sys.stderr)
            broker = Mosquitto(folder).start()
            try:
                off.append(fps(folder, False, broker.port))
                on.append(fps(folder, True, broker.port))
            finally:
                broker.stop()
    p50 = statistics.median(p for p, _ in latencies)
    p99 = statistics.median(p for _, p in latencies)
    spooled = statistics.median(s for s, _ in drains)
    plain = statistics.median(p for _, p in drains)
    print("| measure | result | target |\n|---|---|---|")
    print(f"| latency, bus to subscriber, p50 / p99 | {p50:.1f} / {p99:.1f} ms | p99 < 20 ms |")
    print(f"| spool drain ({args.spool} events) / plain paho QoS 1 | {spooled:.0f} / {plain:.0f} events/s "
          f"({spooled / plain:.2f}) | >= 0.5 |")  # fmt: skip
    print(f"| end-to-end FPS, MQTT on / off | {statistics.median(on):.1f} / {statistics.median(off):.1f} "
          f"({statistics.median(on) / statistics.median(off):.3f}) | >= 0.97 |")  # fmt: skip
    print(f"\nper repeat: latency {latencies}, drain {drains}, fps on {on}, off {off}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
