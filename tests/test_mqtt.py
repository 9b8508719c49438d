"""MQTT against a real mosquitto: what the appliance publishes, Home Assistant discovery, the last
will, commands, and events kept through broker outages and appliance restarts."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from jinja2.sandbox import SandboxedEnvironment

from tests.conftest import PETS_VIDEO, PROFILES, REPO
from tests.runtime import RunningAppliance
from tests.servers import wait_until
from tests.servers.mosquitto import Mosquitto, Subscriber, make_certificates

BASE = "appliance/test-mqtt"
PROFILE = """
extends: @X86@
device: {id: test-mqtt, name: Test appliance, hardware: x86}
detector: {threads: 1}
cameras:
  - id: lobby   # the lobby camera
    source: @VIDEO@
  - id: spare   # kept for later
    enabled: false
    source: @VIDEO@
areas:
  - {id: hall, cameras: [lobby], occupancy_threshold: 3}
distancing: {threshold_cm: 300, min_episode_s: 0.5}
storage: {data_dir: @DATA_DIR@}
metrics: {listen: "127.0.0.1:@METRICS_PORT@"}
runtime: {status_interval_s: 1, stop_timeout_s: 10}
mqtt:
  enabled: true
  host: 127.0.0.1
  port: @BROKER_PORT@
  keepalive_s: 5
"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def subscriber(broker: Mosquitto) -> Iterator[Subscriber]:
    client = Subscriber(broker.port)
    yield client
    client.close()


SPARE_CAMERA = """  - id: spare   # kept for later
    enabled: false
    source: @VIDEO@
"""


def profile_text(data: Path, broker: Mosquitto, extra: str = "", spare: bool = True) -> str:
    profile = PROFILE if spare else PROFILE.replace(SPARE_CAMERA, "")
    profile = profile.replace("@X86@", str(PROFILES / "x86.yaml")).replace("@BROKER_PORT@", str(broker.port))
    return profile.replace("@VIDEO@", str(data / PETS_VIDEO)) + extra


def start_appliance(folder: Path, data: Path, broker: Mosquitto, extra: str = "") -> RunningAppliance:
    folder.mkdir(exist_ok=True)
    return RunningAppliance(folder, profile_text(data, broker, extra))


@pytest.fixture
def appliance(data: Path, tmp_path: Path, broker: Mosquitto) -> Iterator[RunningAppliance]:
    running = start_appliance(tmp_path / "appliance", data, broker)
    yield running
    running.kill()


def payload(message: object) -> dict[str, object]:
    return json.loads(message.payload)  # type: ignore[attr-defined,no-any-return]


def schema(name: str) -> dict[str, object]:
    return json.loads((REPO / "schemas" / "events" / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def test_state_and_events_are_published_in_their_documented_shapes(
    appliance: RunningAppliance, broker: Mosquitto, subscriber: Subscriber
) -> None:
    assert subscriber.wait_for(f"{BASE}/camera/lobby/episode", timeout=60), appliance.log
    subscriber.wait_for(f"{BASE}/area/hall/alert", timeout=30)
    late = Subscriber(broker.port, (f"{BASE}/#",))  # the broker replays what is retained, flagged as such
    try:
        retained = {"availability", "device", "camera/lobby/state", "camera/lobby/enabled", "camera/spare/state",
                    "camera/spare/enabled", "area/hall/state"}  # fmt: skip

        def replayed() -> set[str]:
            return {m.topic.removeprefix(BASE + "/") for m in late.messages if m.retain}

        wait_until(lambda: replayed() >= retained, 10)
        assert replayed() == retained
        assert late.last(f"{BASE}/availability").payload == b"online"  # type: ignore[union-attr]
    finally:
        late.close()
    shapes = {
        f"{BASE}/camera/lobby/state": "camera_state",
        f"{BASE}/camera/lobby/episode": "episode",
        f"{BASE}/area/hall/state": "area",
        f"{BASE}/area/hall/alert": "alert",
        f"{BASE}/device": "device",
    }
    sequence_numbers = []
    for topic, name in shapes.items():
        messages = subscriber.on(topic)
        assert messages, f"nothing on {topic}"
        for message in messages:
            body = payload(message)
            jsonschema.validate(body, schema(name))
            sequence_numbers.append(body["seq"])
    assert len(set(sequence_numbers)) == len(sequence_numbers)  # every payload numbered once
    assert subscriber.last(f"{BASE}/camera/spare/enabled").payload == b"OFF"  # type: ignore[union-attr]
    assert payload(subscriber.last(f"{BASE}/camera/spare/state"))["status"] == "disabled"
    episodes = [payload(m) for m in subscriber.on(f"{BASE}/camera/lobby/episode")]
    assert not any(m.retain for m in subscriber.on(f"{BASE}/camera/lobby/episode"))
    assert {e["state"] for e in episodes} <= {"started", "ended"}


def test_state_is_published_at_most_once_a_second_and_the_violation_sensor_follows_episodes(
    appliance: RunningAppliance, subscriber: Subscriber
) -> None:
    """mqtt.state_interval_s (1 s) bounds each camera's and area's retained state, whatever the
    frame rate (10 fps here); `violation` is ON exactly while an episode is open on the camera."""
    subscriber.wait_for(f"{BASE}/camera/lobby/episode", timeout=60)
    start = len(subscriber.on(f"{BASE}/camera/lobby/state")), len(subscriber.on(f"{BASE}/area/hall/state"))
    time.sleep(10)
    camera = subscriber.on(f"{BASE}/camera/lobby/state")[start[0] :]
    area = subscriber.on(f"{BASE}/area/hall/state")[start[1] :]
    assert 0 < len(camera) <= 12 and 0 < len(area) <= 12, (len(camera), len(area))  # 10 s at most once a second
    states = [payload(m) for m in subscriber.on(f"{BASE}/camera/lobby/state")]
    assert all(s["violation"] == (s["open_episodes"] > 0) for s in states)  # type: ignore[operator]
    assert any(s["violation"] for s in states)


def test_discovery_configs_name_published_topics_with_values_in_their_declared_form(
    appliance: RunningAppliance, subscriber: Subscriber
) -> None:
    subscriber.wait_for(f"{BASE}/camera/lobby/episode", timeout=60)
    time.sleep(2)  # a state of every kind, and the FPS
    configs = {m.topic: payload(m) for m in subscriber.on("homeassistant/+/test-mqtt/+/config") if m.payload}
    components = {topic.split("/")[1] for topic in configs}
    assert components == {"sensor", "binary_sensor", "switch", "image", "button", "event"}
    assert len(configs) == 2 * 9 + 4  # two cameras, one area
    templates = SandboxedEnvironment()
    unique_ids = set()
    for topic, config in configs.items():
        component = topic.split("/")[1]
        assert {"unique_id", "availability_topic", "device", "name"} <= config.keys(), topic
        unique_ids.add(config["unique_id"])
        device = config["device"]
        assert device["identifiers"] and device["name"]
        assert config["availability_topic"] == f"{BASE}/availability"
        if component == "image":  # an image entity needs its topic and the image's type
            assert config["image_topic"] == f"{BASE}/camera/{topic.split('/')[3].removesuffix('_snapshot')}/snapshot"
            assert config["content_type"] == "image/jpeg"
            continue
        if component == "button":
            assert config["command_topic"].endswith("/snapshot/set") and config["payload_press"]
            continue
        states = subscriber.on(config["state_topic"])
        if component == "event":  # an event entity takes each message as one event of a declared type
            for state in states:
                rendered = templates.from_string(config["value_template"]).render(value_json=payload(state))
                assert json.loads(rendered)["event_type"] in config["event_types"], (topic, rendered)
            assert states or "/lobby_" not in topic, f"no {config['state_topic']}"  # lobby has episodes
            continue
        assert states, f"{topic} names {config['state_topic']}, where nothing is published"
        for state in states[-20:]:
            value = state.payload.decode()
            if "value_template" in config:
                value = templates.from_string(config["value_template"]).render(value_json=json.loads(value))
            if component == "sensor":
                float(value)  # a number, as state_class "measurement" requires
                assert config["state_class"] == "measurement" and "unit_of_measurement" in config
            else:
                assert value in (config.get("payload_on", "ON"), config.get("payload_off", "OFF")), (topic, value)
        if component == "switch":
            assert config["command_topic"].startswith(BASE) and config["command_topic"].endswith("/set")
    assert len(unique_ids) == len(configs)
    cameras = [c["device"] for c in configs.values() if c["device"]["identifiers"] != ["appliance_test-mqtt"]]
    assert all(device["via_device"] == "appliance_test-mqtt" for device in cameras)

    before = len(subscriber.on("homeassistant/+/test-mqtt/+/config"))
    subscriber.client.publish("homeassistant/status", "online")  # Home Assistant restarted
    assert wait_until(lambda: len(subscriber.on("homeassistant/+/test-mqtt/+/config")) >= before + len(configs), 10)


def test_a_removed_camera_has_its_entities_removed(
    data: Path, broker: Mosquitto, appliance: RunningAppliance, subscriber: Subscriber
) -> None:
    subscriber.wait_for(f"{BASE}/camera/spare/state", timeout=60)
    appliance.write_profile(profile_text(data, broker, spare=False))
    configs = "homeassistant/+/test-mqtt/+/config"
    removed = lambda: {m.topic for m in subscriber.on(configs) if "/spare_" in m.topic and not m.payload}  # noqa: E731
    assert wait_until(lambda: len(removed()) == 9, 30), appliance.log
    assert wait_until(lambda: subscriber.last(f"{BASE}/camera/spare/state").payload == b"", 10)  # type: ignore[union-attr]


def test_the_last_will_is_seen_after_kill_9_and_offline_after_sigterm(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    availability = f"{BASE}/availability"
    first = start_appliance(tmp_path / "first", data, broker)
    try:
        assert wait_until(lambda: [m.payload for m in subscriber.on(availability)] == [b"online"], 60), first.log
        first.kill()
        assert wait_until(lambda: subscriber.last(availability).payload == b"offline", 15)  # type: ignore[union-attr]
    finally:
        first.kill()
    second = start_appliance(tmp_path / "second", data, broker)
    try:
        assert wait_until(lambda: subscriber.last(availability).payload == b"online", 60), second.log  # type: ignore[union-attr]
        count = len(subscriber.on(availability))
        assert second.stop(signal.SIGTERM) == 0
        assert wait_until(lambda: len(subscriber.on(availability)) > count, 10)
        assert subscriber.last(availability).payload == b"offline"  # type: ignore[union-attr]
    finally:
        second.kill()


def test_a_camera_is_disabled_and_enabled_again_through_mqtt_keeping_the_file_comments(
    appliance: RunningAppliance, subscriber: Subscriber
) -> None:
    assert appliance.wait_for_metric('appliance_camera_up{camera="lobby"}', 1), appliance.log
    subscriber.client.publish(f"{BASE}/camera/lobby/enabled/set", "OFF", qos=1)
    assert wait_until(lambda: subscriber.last(f"{BASE}/camera/lobby/enabled").payload == b"OFF", 30), appliance.log  # type: ignore[union-attr]
    assert wait_until(lambda: payload(subscriber.last(f"{BASE}/camera/lobby/state"))["status"] == "disabled", 10)
    text = appliance.profile_path.read_text()
    assert "# the lobby camera" in text and "# kept for later" in text
    assert "enabled: false" in text.split("# the lobby camera")[1].split("- id: spare")[0]
    subscriber.client.publish(f"{BASE}/camera/lobby/enabled/set", "ON", qos=1)
    assert wait_until(lambda: subscriber.last(f"{BASE}/camera/lobby/enabled").payload == b"ON", 30), appliance.log  # type: ignore[union-attr]
    assert wait_until(lambda: payload(subscriber.last(f"{BASE}/camera/lobby/state"))["status"] == "online", 30)
    assert "# the lobby camera" in appliance.profile_path.read_text()
    changes = [payload(m) for m in subscriber.on(f"{BASE}/config")]
    assert [c["source"] for c in changes if c["kind"] == "applied"] == ["mqtt", "mqtt"]


def test_a_snapshot_on_request_is_a_jpeg_of_the_camera(appliance: RunningAppliance, subscriber: Subscriber) -> None:
    assert appliance.wait_for_metric('appliance_camera_up{camera="lobby"}', 1), appliance.log
    subscriber.client.publish(f"{BASE}/camera/lobby/snapshot/set", "PRESS", qos=1)
    (snapshot,) = subscriber.wait_for(f"{BASE}/camera/lobby/snapshot", timeout=10)
    image = cv2.imdecode(np.frombuffer(snapshot.payload, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (576, 768, 3)
    subscriber.client.publish(f"{BASE}/camera/spare/snapshot/set", "PRESS", qos=1)
    (refusal,) = subscriber.wait_for(f"{BASE}/error", timeout=10)
    assert payload(refusal)["error"] == "camera 'spare' is not running: no snapshot"


@pytest.mark.parametrize(
    ("topic", "message", "error"),
    [
        ("camera/lobby/enabled/set", b"MAYBE", "the payload must be ON or OFF"),
        ("camera/lobby/enabled/set", b"\xff\xfe\x00", "the payload must be ON or OFF"),
        ("camera/lobby/enabled/set", b"ON" * 1000, "payload of 2000 bytes; commands are at most 256"),
        ("camera/nowhere/enabled/set", b"ON", "no camera 'nowhere' in the profile"),
        ("camera/lobby/explode/set", b"ON", "unknown command"),
        ("set", b"{}", "unknown command"),
        ("area/hall/threshold/set", b"5", "unknown command"),
    ],
)
def test_bad_commands_are_refused_on_the_error_topic_and_change_nothing(
    appliance: RunningAppliance, subscriber: Subscriber, topic: str, message: bytes, error: str
) -> None:
    assert subscriber.wait_for(f"{BASE}/availability", timeout=60), appliance.log
    profile = appliance.profile_path.read_bytes()
    subscriber.client.publish(f"{BASE}/{topic}", message, qos=1)
    (refusal,) = subscriber.wait_for(f"{BASE}/error", timeout=10)
    body = payload(refusal)
    jsonschema.validate(body, schema("command_error"))
    assert error in body["error"] and body["topic"] == f"{BASE}/{topic}"
    assert "refused" in appliance.log and appliance.process.poll() is None
    assert appliance.profile_path.read_bytes() == profile
    assert not subscriber.on(f"{BASE}/config")


def test_a_retained_command_is_ignored_and_a_flood_of_commands_is_limited(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """Anyone may leave a retained OFF on a command topic; obeying it would disable the camera at
    every start. A flood of 300 commands is taken as a burst of 10 and reported in one line, not
    as hundreds of profile rewrites and error events."""
    subscriber.client.publish(f"{BASE}/camera/lobby/enabled/set", "OFF", qos=1, retain=True).wait_for_publish(5)
    running = start_appliance(tmp_path, data, broker)
    try:
        assert running.wait_for_metric('appliance_camera_up{camera="lobby"}', 1), running.log
        assert wait_until(lambda: "ignoring a retained command on" in running.log, 20), running.log
        assert "enabled: false" not in running.profile_path.read_text().split("- id: spare")[0]
        for _ in range(300):
            subscriber.client.publish(f"{BASE}/camera/nowhere/enabled/set", "ON", qos=0)
        assert wait_until(lambda: "command(s) refused over the limit" in running.log, 30), running.log
        assert len(subscriber.on(f"{BASE}/error")) <= 20  # the burst's refusals, not 300
        assert running.process.poll() is None

        def obeyed() -> bool:  # a valid command still applies once the bucket refills (1 a second)
            subscriber.client.publish(f"{BASE}/camera/lobby/enabled/set", "OFF", qos=1)
            return wait_until(lambda: "enabled: false" in running.profile_path.read_text().split("- id: spare")[0], 3)

        assert wait_until(obeyed, 60), running.log
    finally:
        subscriber.client.publish(f"{BASE}/camera/lobby/enabled/set", b"", qos=1, retain=True)  # cleared
        running.kill()


def test_a_command_on_a_camera_from_an_extended_profile_is_refused_with_the_reason(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    running = start_appliance(tmp_path, data, broker)
    try:
        base = tmp_path / "base.yaml"
        base.write_text(running.profile_path.read_text())
        running.write_profile("extends: base.yaml\nruntime: {status_interval_s: 2}\n")
        assert subscriber.wait_for(f"{BASE}/availability", timeout=60), running.log
        subscriber.client.publish(f"{BASE}/camera/lobby/enabled/set", "OFF", qos=1)
        (refusal,) = subscriber.wait_for(f"{BASE}/error", timeout=20)
        assert "is defined in a profile this one extends; change it there" in payload(refusal)["error"]
        assert wait_until(lambda: subscriber.last(f"{BASE}/camera/lobby/enabled").payload == b"ON", 10)  # type: ignore[union-attr]
    finally:
        running.kill()


def _episodes_in_event_log(running: RunningAppliance) -> list[dict[str, object]]:
    """The ended episodes, which the event log keeps (MQTT also has each one's start)."""
    records = []
    for path in sorted((running.data_dir / "events").glob("*/*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if r["type"] == "episode"]


def _key(episode: dict[str, object]) -> tuple[object, ...]:
    return episode["camera"], tuple(episode["pair"]), episode["start"], episode["state"]  # type: ignore[arg-type]


def test_a_30_s_broker_outage_loses_no_episode_event(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    running = start_appliance(tmp_path / "appliance", data, broker)
    try:
        assert subscriber.wait_for(f"{BASE}/camera/lobby/episode", timeout=60), running.log
        broker.stop()
        time.sleep(30)
        assert running.metric('appliance_output_up{output="mqtt"}') == 0
        spooled = running.metric('appliance_output_spooled{output="mqtt"}')
        broker.start()
        assert wait_until(lambda: "finished" in json.dumps(payload(subscriber.last(f"{BASE}/camera/lobby/state"))), 120)
        assert running.stop() == 0
    finally:
        running.kill()
    logged = [_key(e) for e in _episodes_in_event_log(running)]
    received = list(dict.fromkeys(_key(payload(m)) for m in subscriber.on(f"{BASE}/camera/lobby/episode")))
    ended = [key for key in received if key[3] == "ended"]
    assert spooled > 0, "the outage held no episode: the test proves nothing"
    assert set(ended) == set(logged), "lost or invented episode events"
    assert ended == logged, "episode events out of order"
    for camera, pair, start, _ in ended:  # and each one's start came before its end
        assert received.index((camera, pair, start, "started")) < received.index((camera, pair, start, "ended"))


def test_a_stalled_broker_holds_up_neither_the_cameras_nor_the_metrics(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    running = start_appliance(tmp_path / "appliance", data, broker)
    frames = 'appliance_frames_processed_total{camera="lobby"}'
    try:
        assert subscriber.wait_for(f"{BASE}/camera/lobby/state", timeout=60), running.log
        assert broker.process is not None
        broker.process.send_signal(signal.SIGSTOP)  # connected, but it reads nothing and answers nothing
        try:
            counts = [running.metric(frames)]
            for _ in range(4):
                time.sleep(2)
                counts.append(running.metric(frames))  # the metrics answer
            # frames keep coming (10 fps; progress, not a rate: a busy machine may be slower)
            assert all(b > a for a, b in itertools.pairwise(counts)), counts
            assert running.process.poll() is None and "watchdog" not in running.log.lower()
        finally:
            broker.process.send_signal(signal.SIGCONT)
        assert running.stop() == 0  # and it still stops cleanly
    finally:
        running.kill()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_events_queued_while_the_broker_is_down_survive_an_appliance_restart(
    data: Path, tmp_path: Path, broker: Mosquitto, how: str
) -> None:
    broker.stop()
    first = start_appliance(tmp_path / "appliance", data, broker)
    try:
        assert wait_until(lambda: len(_episodes_in_event_log(first)) >= 2, 90), first.log
        assert first.wait_for_metric('appliance_output_spooled{output="mqtt"}', 4, timeout=10), first.log
        if how == "sigkill":
            first.kill()
        else:
            assert first.stop() == 0
    finally:
        first.kill()
    queued = _episodes_in_event_log(first)
    assert queued, "no episode ended before the stop: the test proves nothing"
    broker.start()
    subscriber = Subscriber(broker.port, (f"{BASE}/camera/+/episode",))
    second = RunningAppliance(first.folder, profile_text(data, broker))  # the same data_dir
    try:
        received = lambda: {_key(payload(m)) for m in subscriber.on(f"{BASE}/camera/lobby/episode")}  # noqa: E731
        assert wait_until(lambda: {_key(e) for e in queued} <= received(), 60), second.log
        assert second.wait_for_metric('appliance_output_events_delivered_total{output="mqtt"}', len(queued), 10)
    finally:
        second.kill()
        subscriber.close()


def test_a_wrong_password_gives_one_clear_line_and_a_status(data: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, users={"appliance": "right-password"}).start()
    try:
        extra = "  username: appliance\n  password: wrong-password\n"
        running = start_appliance(tmp_path / "appliance", data, broker, extra)
        try:
            assert running.wait_for_metric('appliance_frames_processed_total{camera="lobby"}', 5), running.log
            time.sleep(4)  # several reconnection attempts
            assert running.metric('appliance_output_up{output="mqtt"}') == 0
            refusals = [line for line in running.log.splitlines() if "refused the connection" in line]
            assert len(refusals) == 1, running.log
            assert "wrong-password" not in running.log and "Traceback" not in running.log
        finally:
            running.kill()
    finally:
        broker.stop()


def test_mutual_tls_with_a_password_from_a_file_connects(data: Path, tmp_path: Path) -> None:
    tls, client_cert, client_key = make_certificates(tmp_path / "pki")
    broker = Mosquitto(tmp_path, users={"appliance": "s3cret-pw"}, tls=tls).start()
    (tmp_path / "mqtt-password").write_text("s3cret-pw\n")
    extra = (
        f"  username: appliance\n  password_file: {tmp_path / 'mqtt-password'}\n"
        f"  tls: {{enabled: true, ca_file: {tls.ca_file}, cert_file: {client_cert}, key_file: {client_key}}}\n"
    )
    running = start_appliance(tmp_path / "appliance", data, broker, extra)
    try:
        assert running.wait_for_metric('appliance_output_up{output="mqtt"}', 1, timeout=60), running.log
        assert "connected to 127.0.0.1" in running.log and "s3cret-pw" not in running.log
    finally:
        running.kill()
        broker.stop()


def test_a_certificate_from_another_ca_gives_one_clear_line(data: Path, tmp_path: Path) -> None:
    tls, client_cert, client_key = make_certificates(tmp_path / "pki")
    other, _, _ = make_certificates(tmp_path / "other", name="other-ca")
    broker = Mosquitto(tmp_path, tls=tls).start()
    extra = f"  tls: {{enabled: true, ca_file: {other.ca_file}, cert_file: {client_cert}, key_file: {client_key}}}\n"
    running = start_appliance(tmp_path / "appliance", data, broker, extra)
    try:
        assert running.wait_for_metric('appliance_frames_processed_total{camera="lobby"}', 5), running.log
        time.sleep(4)  # several attempts
        lines = [line for line in running.log.splitlines() if "mqtt: cannot connect" in line]
        assert len(lines) == 1 and "TLS: the broker's certificate does not verify" in lines[0], running.log
        assert running.metric('appliance_output_up{output="mqtt"}') == 0 and "Traceback" not in running.log
    finally:
        running.kill()
        broker.stop()


def test_protocol_5_and_sampled_detections(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    running = start_appliance(tmp_path / "appliance", data, broker, "  protocol: '5'\n  detections_interval_s: 2\n")
    try:
        detections = subscriber.wait_for(f"{BASE}/camera/lobby/detections", count=3, timeout=60)
        assert len(detections) >= 3, running.log
        bodies = [payload(m) for m in detections]
        for body in bodies:
            jsonschema.validate(body, schema("detections"))
        times = [float(body["t"]) for body in bodies]  # type: ignore[arg-type]
        assert all(later - earlier >= 2 for earlier, later in itertools.pairwise(times))  # at most every 2 s
        assert any(body["people"] for body in bodies)
    finally:
        running.kill()


PLACES = """    zones: [{id: left, name: Left half, polygon: [[0, 0], [384, 0], [384, 576], [0, 576]], loitering_s: 5}]
    lines: [{id: middle, points: [[0, 330], [768, 330]]}]
"""


def test_zones_and_lines_reach_mqtt_and_home_assistant_in_their_shapes(
    data: Path, tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    text = profile_text(data, broker, spare=False).replace(
        "    source: " + str(data / PETS_VIDEO) + "\n", "    source: " + str(data / PETS_VIDEO) + "\n" + PLACES, 1
    )
    hall = "{id: hall, entrances: [lobby/middle], zones: [lobby/left], occupancy_threshold: 3}"
    text = text.replace("{id: hall, cameras: [lobby], occupancy_threshold: 3}", hall)
    (tmp_path / "appliance").mkdir()
    running = RunningAppliance(tmp_path / "appliance", text)
    try:
        for leaf in ("line/middle/crossing", "zone/left/visit", "zone/left/state", "line/middle/state"):
            assert subscriber.wait_for(f"{BASE}/camera/lobby/{leaf}", timeout=90), (leaf, running.log)
        assert subscriber.wait_for(f"{BASE}/area/hall/alert", timeout=60), running.log
        metrics = running.metrics()
        late = Subscriber(broker.port, (f"{BASE}/camera/lobby/+/+/state",))  # the broker replays what is retained
        try:
            states = {f"{BASE}/camera/lobby/zone/left/state", f"{BASE}/camera/lobby/line/middle/state"}
            assert wait_until(lambda: {m.topic for m in late.messages if m.retain} == states, 10)
        finally:
            late.close()
    finally:
        running.kill()
    crossings = [v for k, v in metrics.items() if k.startswith('appliance_line_crossings_total{camera="lobby"')]
    assert crossings and sum(crossings) >= 1, sorted(metrics)
    assert 'appliance_zone_people{camera="lobby",zone="left"}' in metrics
    assert metrics['appliance_zone_dwell_seconds_count{camera="lobby",zone="left"}'] >= 1
    assert metrics['appliance_zone_loitering_total{camera="lobby",zone="left"}'] >= 1
    shapes = {"line/middle/crossing": "crossing", "line/middle/state": "crossing", "zone/left/visit": "zone_visit",
              "zone/left/state": "zone"}  # fmt: skip
    for leaf, name in shapes.items():
        for message in subscriber.on(f"{BASE}/camera/lobby/{leaf}"):
            jsonschema.validate(payload(message), schema(name))
            assert leaf.endswith("/state") or not message.retain
    kinds = {payload(m)["kind"] for m in subscriber.on(f"{BASE}/area/hall/alert")}
    assert kinds <= {"occupancy", "loitering"} and "estimated_people" in payload(
        subscriber.last(f"{BASE}/area/hall/state"))  # fmt: skip
    configs = {m.topic: payload(m) for m in subscriber.on("homeassistant/+/test-mqtt/+/config") if m.payload}
    templates = SandboxedEnvironment()
    places = {t: c for t, c in configs.items() if "_zone_" in t or "_line_" in t or "estimated" in t}
    assert len(places) == 2 + 3 + 1, sorted(places)  # zone: people, visit; line: in, out, crossing; the estimate
    for topic, config in places.items():
        states = subscriber.on(config["state_topic"])
        assert states, f"{topic} names {config['state_topic']}, where nothing is published"
        rendered = templates.from_string(config["value_template"]).render(value_json=payload(states[-1]))
        if topic.split("/")[1] == "event":
            assert json.loads(rendered)["event_type"] in config["event_types"], (topic, rendered)
        else:
            assert float(rendered) >= 0 and config["unit_of_measurement"] == "people"
