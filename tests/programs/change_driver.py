"""`appliance run` with a caller that changes the profile through the change path from another
thread, as the config API and MQTT will, then stops the runtime with SIGTERM:
python -m tests.programs.change_driver PROFILE. Writes each outcome as a JSON line to
`outcomes.jsonl` beside the profile (not to the log, where other processes' lines interleave)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from appliance.runtime.app import Runtime
from appliance.runtime.changes import ChangeOutcome

ONLINE_TIMEOUT_S = 90.0


def cap_second_camera(document: CommentedMap) -> None:
    document["cameras"][1]["fps_cap"] = 5


def report(runtime: Runtime, name: str, outcome: ChangeOutcome) -> None:
    fields = asdict(outcome) | {"errors": [str(issue) for issue in outcome.errors]}
    with outcomes_path(runtime.profile_path).open("a") as outcomes:
        outcomes.write(json.dumps({"change": name, **fields}) + "\n")


def outcomes_path(profile: Path) -> Path:
    return profile.with_name("outcomes.jsonl")


def drive(runtime: Runtime) -> None:
    try:
        deadline = time.monotonic() + ONLINE_TIMEOUT_S
        while {c.status for c in runtime.state.snapshot().cameras.values()} != {"online"}:
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)
        report(runtime, "edit", runtime.changes.edit(cap_second_camera, source="test").result(60))
        report(runtime, "invalid", runtime.changes.replace("device: {id: Not Valid}\n", source="test").result(60))
        report(runtime, "same", runtime.changes.reload("test").result(60))
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    runtime = Runtime(Path(sys.argv[1]), log_level="info")
    threading.Thread(target=drive, args=(runtime,), daemon=True).start()
    sys.exit(runtime.run())
