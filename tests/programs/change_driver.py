"""`appliance run` with a caller that changes the profile through the change path from another
thread through the dispatcher, as the config API and MQTT do, then stops the runtime with SIGTERM:
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

from appliance.app import build_runtime
from appliance.config.edits import PatchEntry
from appliance.runtime.app import Runtime
from appliance.runtime.changes import ChangeOutcome
from appliance.runtime.commands import EditProfile, ReloadProfile, ReplaceProfile

ONLINE_TIMEOUT_S = 90.0
WATCHER_SETTLE_S = 2.0


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
        second = runtime.loaded.profile.cameras[1].id
        cap_second = EditProfile(PatchEntry("cameras", second, {"fps_cap": 5}), source="test")
        report(runtime, "edit", runtime.dispatcher.execute(cap_second).result(60))
        time.sleep(WATCHER_SETTLE_S)  # the file watcher has seen the write
        invalid = ReplaceProfile("device: {id: Not Valid}\n", source="test")
        report(runtime, "invalid", runtime.dispatcher.execute(invalid).result(60))
        report(runtime, "same", runtime.dispatcher.execute(ReloadProfile("test")).result(60))
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    runtime = build_runtime(Path(sys.argv[1]), log_level="info")
    threading.Thread(target=drive, args=(runtime,), daemon=True).start()
    sys.exit(runtime.run())
