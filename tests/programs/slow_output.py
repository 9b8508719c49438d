"""`appliance run` with one more output that takes 5 s per event, as a stuck MQTT spool or a
hung HTTP call would: python -m tests.programs.slow_output PROFILE"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from appliance.app import build_runtime
from appliance.runtime.events import Event
from appliance.runtime.outputs.base import Output

SECONDS_PER_EVENT = 5.0


class SlowOutput(Output):
    name = "slow"
    capacity = 20

    def handle(self, event: Event) -> None:
        time.sleep(SECONDS_PER_EVENT)


if __name__ == "__main__":
    sys.exit(build_runtime(Path(sys.argv[1]), log_level="info", extra_outputs=[SlowOutput()]).run())
