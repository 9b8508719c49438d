"""`appliance run` with one more output that takes 5 s per event, as a stuck MQTT spool or a
hung HTTP call would: python -m tests.programs.slow_output PROFILE"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from appliance.runtime.app import Runtime
from appliance.runtime.events import Event
from appliance.runtime.outputs.base import Output

SECONDS_PER_EVENT = 5.0


class SlowOutput(Output):
    name = "slow"
    capacity = 20

    def handle(self, event: Event) -> None:
        time.sleep(SECONDS_PER_EVENT)


if __name__ == "__main__":
    sys.exit(Runtime(Path(sys.argv[1]), log_level="info", outputs=[SlowOutput()]).run())
