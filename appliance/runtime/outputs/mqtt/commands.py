"""Commands from the broker, turned into the runtime's commands for its dispatcher:
`camera/<id>/enabled/set` (ON or OFF) and `camera/<id>/snapshot/set`. A retained command is
ignored (obeying it would undo the operator at every start), commands are rate limited, and
every refusal is answered on the error topic."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future

from appliance.config.edits import SetCameraEnabled
from appliance.config.secrets import REDACTOR
from appliance.runtime.changes import ChangeOutcome
from appliance.runtime.commands import Dispatcher, EditProfile, TakeSnapshot
from appliance.runtime.outputs.mqtt.ratelimit import TokenBucket

log = logging.getLogger(__name__)
MAX_COMMAND_BYTES = 256
COMMAND_BURST, COMMANDS_PER_S = 10, 1.0  # commands taken at once, then on average
COMMAND_REPORT_S = 60.0
ENABLE_WORDS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
SOURCE = "mqtt"


def parse_command(
    base: str, camera_ids: Collection[str], topic: str, payload: bytes
) -> EditProfile | TakeSnapshot | str:
    """The command a message under `base` asks for, or why it is refused."""
    if len(payload) > MAX_COMMAND_BYTES:
        return f"payload of {len(payload)} bytes; commands are at most {MAX_COMMAND_BYTES}"
    parts = topic.removeprefix(base + "/").split("/")
    if len(parts) != 4 or parts[0] != "camera" or parts[2] not in ("enabled", "snapshot"):
        return "unknown command; commands: camera/<id>/enabled/set, camera/<id>/snapshot/set"
    camera_id = parts[1]
    if camera_id not in camera_ids:
        return f"no camera '{camera_id}' in the profile"
    if parts[2] == "snapshot":
        return TakeSnapshot(camera_id, SOURCE)
    word = payload.decode("utf-8", errors="replace").strip().lower()
    if word not in ENABLE_WORDS:
        return "the payload must be ON or OFF"
    return EditProfile(SetCameraEnabled(camera_id, ENABLE_WORDS[word]), SOURCE)


class CommandIntake:
    """Takes messages on the command topics, has the dispatcher execute them, and follows the
    profile changes they started until they finish."""

    def __init__(self, dispatcher: Dispatcher, refuse: Callable[[str, str], None]) -> None:
        """`refuse(topic, why)` answers a refused command."""
        self.dispatcher = dispatcher
        self.refuse = refuse
        self.snapshots_asked: set[str] = set()  # cameras whose next snapshot a command asked for
        self._changing: list[tuple[str, SetCameraEnabled, Future[ChangeOutcome]]] = []
        self._bucket = TokenBucket(burst=COMMAND_BURST, per_second=COMMANDS_PER_S)
        self._reported_at = 0.0

    def receive(self, base: str, camera_ids: Collection[str], topic: str, payload: bytes, retained: bool) -> None:
        if retained:
            log.warning(
                "mqtt: ignoring a retained command on %s; commands must not be retained", REDACTOR.redact(topic)
            )
            return
        if not self._bucket.take():
            return  # counted; reported once per interval by report_refused
        command = parse_command(base, camera_ids, topic, payload)
        match command:
            case str(why):
                self.refuse(topic, why)
            case TakeSnapshot(camera_id=camera_id):
                if self.dispatcher.execute(command):
                    self.snapshots_asked.add(camera_id)
                else:
                    self.refuse(topic, f"camera '{camera_id}' is not running: no snapshot")
            case EditProfile(edit=SetCameraEnabled() as edit):
                self._changing.append((topic, edit, self.dispatcher.execute(command)))

    def finished(self) -> list[tuple[SetCameraEnabled, bool]]:
        """The switches finished since the last call, each with whether it applied; the refused
        ones are answered."""
        done, waiting = [], []
        for topic, edit, future in self._changing:
            if not future.done():
                waiting.append((topic, edit, future))
                continue
            try:
                outcome = future.result()
            except RuntimeError as error:  # the runtime is stopping
                self.refuse(topic, str(error))
                continue
            if not outcome.applied:
                self.refuse(topic, "; ".join(REDACTOR.redact(str(issue)) for issue in outcome.errors))
            done.append((edit, outcome.applied))
        self._changing = waiting
        return done

    def report_refused(self) -> None:
        """Commands over the rate limit, once a minute at most: a flood makes one line, not an
        event each (which would push real events out of the spool)."""
        now = time.monotonic()
        if now - self._reported_at >= COMMAND_REPORT_S and (refused := self._bucket.take_refused()):
            self._reported_at = now
            log.warning("mqtt: %d command(s) refused over the limit of %d at once, %g a second after",
                        refused, COMMAND_BURST, COMMANDS_PER_S)  # fmt: skip
