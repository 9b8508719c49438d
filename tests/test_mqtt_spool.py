"""The MQTT spool on a real SQLite file: order, limits, and what survives reopening."""

from __future__ import annotations

from pathlib import Path

from appliance.runtime.outputs.mqtt.spool import SEQUENCE_BLOCK, MqttSpool
from appliance.runtime.outputs.spool import SpoolLimits

ROOMY = SpoolLimits(max_messages=1000, max_bytes=1 << 20, max_age_s=3600)


def topics(spool: MqttSpool) -> list[str]:
    return [message.topic for message in spool.after(0, 10_000)]


def test_messages_come_out_in_order_and_leave_when_delivered(tmp_path: Path) -> None:
    spool = MqttSpool(tmp_path / "spool.sqlite3", ROOMY)
    for number in range(5):
        spool.put(f"t/{number}", b"x" * 10, now=100.0)
    first_two = spool.after(0, 2)
    assert [m.topic for m in first_two] == ["t/0", "t/1"]
    assert [m.topic for m in spool.after(first_two[-1].row, 10)] == ["t/2", "t/3", "t/4"]
    spool.remove([m.row for m in first_two])
    assert topics(spool) == ["t/2", "t/3", "t/4"] and (spool.count, spool.bytes) == (3, 30)


def test_the_oldest_are_dropped_beyond_the_count_and_counted(tmp_path: Path) -> None:
    spool = MqttSpool(tmp_path / "spool.sqlite3", SpoolLimits(max_messages=100, max_bytes=1 << 20, max_age_s=3600))
    for number in range(250):
        spool.put(f"t/{number}", b"{}", now=100.0)
    assert topics(spool) == [f"t/{n}" for n in range(150, 250)]
    assert (spool.count, spool.dropped) == (100, 150)


def test_the_oldest_are_dropped_beyond_the_bytes(tmp_path: Path) -> None:
    spool = MqttSpool(tmp_path / "spool.sqlite3", SpoolLimits(max_messages=1000, max_bytes=1000, max_age_s=3600))
    for number in range(30):
        spool.put(f"t/{number}", b"x" * 100, now=100.0)
    assert topics(spool) == [f"t/{n}" for n in range(20, 30)]
    assert (spool.bytes, spool.dropped) == (1000, 20)


def test_messages_older_than_max_age_are_dropped(tmp_path: Path) -> None:
    spool = MqttSpool(tmp_path / "spool.sqlite3", SpoolLimits(max_messages=1000, max_bytes=1 << 20, max_age_s=60))
    spool.put("old", b"1", now=100.0)
    spool.put("recent", b"2", now=150.0)
    spool.put("new", b"3", now=170.0)
    assert topics(spool) == ["recent", "new"] and spool.dropped == 1


def test_the_file_stays_bounded_however_long_the_outage(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = MqttSpool(path, SpoolLimits(max_messages=200, max_bytes=1 << 20, max_age_s=3600))
    sizes = []
    for round_number in range(10):
        for number in range(2000):
            spool.put(f"t/{number}", b"y" * 200, now=100.0 + round_number)
        sizes.append(sum(p.stat().st_size for p in tmp_path.iterdir()))
    assert spool.count == 200 and spool.dropped == 10 * 2000 - 200
    assert max(sizes[3:]) <= 2 * sizes[2], sizes  # reuses its pages: no growth with the outage's length


def test_messages_and_sequence_numbers_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = MqttSpool(path, ROOMY)
    spool.put("kept", b"1", now=100.0)
    numbers = [spool.next_sequence() for _ in range(3)]
    spool.set_discovery_topics({"homeassistant/sensor/x/config"})
    del spool  # as after kill -9: never closed
    reopened = MqttSpool(path, ROOMY)
    assert topics(reopened) == ["kept"] and reopened.count == 1
    assert reopened.next_sequence() > max(numbers)
    assert reopened.next_sequence() <= SEQUENCE_BLOCK + 2  # numbers are reserved in blocks, not skipped forever
    assert reopened.discovery_topics() == {"homeassistant/sensor/x/config"}
