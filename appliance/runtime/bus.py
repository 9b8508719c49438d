"""The event bus: every event goes to the runtime state first, on the supervisor's loop, then
to each output, handed over once per tick. Publishing never waits for an output (see
outputs/base.py)."""

from __future__ import annotations

import time
from collections import deque

from appliance.config import LoadedProfile
from appliance.runtime.events import Event
from appliance.runtime.outputs.base import Output, OutputRunner
from appliance.runtime.state import OutputStats, RuntimeState


class EventBus:
    def __init__(self, state: RuntimeState) -> None:
        self.state = state
        self.runners: list[OutputRunner] = []
        state.output_stats = self.stats

    def add(self, output: Output) -> None:
        self.runners.append(OutputRunner(output))

    def start(self) -> None:
        for runner in self.runners:
            runner.start()

    def publish(self, event: Event) -> None:
        pending = deque([event])
        while pending:
            current = pending.popleft()
            pending.extend(self.state.handle(current))
            for runner in self.runners:
                runner.offer(current)

    def hand_over(self) -> None:
        """Pass what was published since the last call to the outputs' threads."""
        for runner in self.runners:
            runner.hand_over()

    def reconfigure(self, loaded: LoadedProfile) -> list[str]:
        """Hand a new profile to every output; the names of those told."""
        for runner in self.runners:
            runner.reconfigure(loaded)
        return [runner.name for runner in self.runners]

    def stats(self) -> tuple[OutputStats, ...]:
        return tuple(stats for runner in self.runners for stats in (runner.stats, *runner.output.parts()))

    def close(self, timeout: float) -> None:
        """Let every output finish what is queued, all at once, for at most `timeout`."""
        deadline = time.monotonic() + timeout
        for runner in self.runners:
            runner.request_close()
        for runner in self.runners:
            runner.join(max(0.1, deadline - time.monotonic()))
