"""Outputs run off the supervisor's loop: a slow one drops and counts, never blocks the
publisher or the others; events, reconfiguration and closing reach each output on its own
thread."""

from __future__ import annotations

import threading
import time

from appliance.config import LoadedProfile, load_profile
from appliance.runtime.bus import EventBus
from appliance.runtime.events import Event, FrameResult
from appliance.runtime.outputs.base import Output
from appliance.runtime.state import RuntimeState
from tests.conftest import PROFILES
from tests.servers import wait_until


class Recorder(Output):
    name = "recorder"

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()
        self.profiles: list[LoadedProfile] = []
        self.closed = False

    def handle(self, event: Event) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(event)

    def reconfigure(self, loaded: LoadedProfile) -> None:
        self.threads.add(threading.current_thread().name)
        self.profiles.append(loaded)

    def close(self) -> None:
        self.closed = True


class Stuck(Output):
    name = "stuck"
    capacity = 5

    def __init__(self) -> None:
        self.release = threading.Event()

    def handle(self, event: Event) -> None:
        self.release.wait(30)


def frame(index: int) -> FrameResult:
    return FrameResult("lobby", index, index / 10, 1, 0, {})


def test_a_stuck_output_drops_and_counts_while_the_others_keep_up() -> None:
    loaded = load_profile(PROFILES / "x86.yaml")
    bus = EventBus(RuntimeState(loaded))
    recorder, stuck = Recorder(), Stuck()
    bus.add(stuck)
    bus.add(recorder)
    bus.start()
    started = time.perf_counter()
    for index in range(1000):
        bus.publish(frame(index))
        if index % 100 == 0:
            bus.hand_over()  # as the supervisor's loop does every tick
    bus.hand_over()
    publishing = time.perf_counter() - started
    assert publishing < 10.0  # nothing waited on the stuck output, which never returns (1000 events)
    assert wait_until(lambda: len([e for e in recorder.events if isinstance(e, FrameResult)]) == 1000, 10)
    stats = {s.name: s for s in bus.state.snapshot().device.outputs}
    assert stats["stuck"].dropped >= 1000 - stuck.capacity - 1
    assert stats["recorder"].dropped == 0 and recorder.threads == {"output-recorder"}
    stuck.release.set()
    bus.close(timeout=5)
    assert recorder.closed


def test_reconfigure_reaches_the_output_on_its_thread() -> None:
    loaded = load_profile(PROFILES / "x86.yaml")
    bus = EventBus(RuntimeState(loaded))
    recorder = Recorder()
    bus.add(recorder)
    bus.start()
    assert bus.reconfigure(loaded) == ["recorder"]
    assert wait_until(lambda: recorder.profiles == [loaded], 5)
    bus.close(timeout=5)
    assert recorder.threads == {"output-recorder"}


def test_closing_is_bounded_even_when_an_output_hangs() -> None:
    loaded = load_profile(PROFILES / "x86.yaml")
    bus = EventBus(RuntimeState(loaded))
    stuck = Stuck()
    bus.add(stuck)
    bus.start()
    bus.publish(frame(0))
    started = time.monotonic()
    bus.close(timeout=1)
    assert time.monotonic() - started < 8  # bounded by its timeout, not by the stuck output (never)
    stuck.release.set()
