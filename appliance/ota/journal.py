"""What the applier is doing, kept in the state directory so a power cut at any step can be
finished or undone at the next start; and what it did (the history)."""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from appliance.config.yamlio import write_atomically
from appliance.ota.slots import fsync_folder
from appliance.runtime.events import UpdateResult

log = logging.getLogger(__name__)
State = Literal["received", "verified", "staged", "switched", "health", "rolling_back", "committed"]
STATES: tuple[State, ...] = ("received", "verified", "staged", "switched", "health", "rolling_back", "committed")
CRASH_AT = "APPLIANCE_OTA_CRASH_AT"  # fault injection for tests: SIGKILL right after recording this state
HISTORY_LENGTH = 100


@dataclass(frozen=True)
class Step:
    """The update in progress."""

    state: State
    bundle: str  # file name, as it arrived in the inbox
    started: float  # Unix time
    version: int | None = None
    kind: str | None = None
    slot: str | None = None  # being installed
    previous: str | None = None  # the committed slot before it ("" for none: the factory profile)

    def to(self, state: State, **changes: Any) -> Step:
        return replace(self, state=state, **changes)


class Journal:
    def __init__(self, root: Path) -> None:
        self.path = root / "journal.json"
        self.history_path = root / "history.json"

    def read(self) -> Step | None:
        try:
            return Step(**json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:  # damaged: set aside, so that the device starts
            aside = self.path.with_name(f"{self.path.name}.unreadable")
            log.error("ota: the journal %s is unreadable (%s); set aside as %s", self.path, error, aside.name)
            self.path.replace(aside)
            return None

    def record(self, step: Step) -> Step:
        write_atomically(self.path, json.dumps(asdict(step), indent=2))
        log.debug("ota: %s %s", step.state, step.bundle)
        if os.environ.get(CRASH_AT) == step.state:
            os.kill(os.getpid(), signal.SIGKILL)
        return step

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        fsync_folder(self.path.parent)

    def history(self) -> list[UpdateResult]:
        try:
            return [UpdateResult(**item) for item in json.loads(self.history_path.read_text(encoding="utf-8"))]
        except FileNotFoundError:
            return []

    def add(self, result: UpdateResult) -> None:
        results = [*self.history(), result][-HISTORY_LENGTH:]
        write_atomically(self.history_path, json.dumps([asdict(item) for item in results], indent=1))
