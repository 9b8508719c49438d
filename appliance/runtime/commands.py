"""Commands: what a transport (the API, MQTT, OTA, the profile file's watcher, SIGHUP, later the
console) asks the runtime to do, typed; and the one dispatcher that executes each of them,
whatever carried it. A transport parses and answers; it never changes the profile itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import overload

from appliance.config.edits import ProfileEdit
from appliance.runtime.changes import ChangeOutcome, ProfileChanges

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditProfile:
    """A named edit of the profile file; `revision`, when given, is the file the caller read."""

    edit: ProfileEdit
    source: str
    revision: str | None = None


@dataclass(frozen=True)
class ReplaceProfile:
    """A whole new profile file."""

    text: str
    source: str
    revision: str | None = None


@dataclass(frozen=True)
class ReloadProfile:
    """Apply the profile file as it is on disk now."""

    source: str


@dataclass(frozen=True)
class TakeSnapshot:
    """A JPEG of a running camera's next frame, published as a Snapshot event."""

    camera_id: str
    source: str


ProfileCommand = EditProfile | ReplaceProfile | ReloadProfile


class Dispatcher:
    def __init__(self, changes: ProfileChanges, request_snapshot: Callable[[str], bool]) -> None:
        self.changes = changes
        self._request_snapshot = request_snapshot

    @overload
    def execute(self, command: TakeSnapshot) -> bool: ...

    @overload
    def execute(self, command: ProfileCommand) -> Future[ChangeOutcome]: ...

    def execute(self, command: ProfileCommand | TakeSnapshot) -> Future[ChangeOutcome] | bool:
        """A profile command's outcome comes in its future; a snapshot's answer says whether the
        camera runs (the snapshot follows as an event)."""
        match command:
            case EditProfile(edit=edit, source=source, revision=revision):
                log.info("%s asks to %s", source, edit.describe())
                return self.changes.edit(edit, source=source, revision=revision)
            case ReplaceProfile(text=text, source=source, revision=revision):
                log.info("%s asks to replace the profile", source)
                return self.changes.replace(text, source=source, revision=revision)
            case ReloadProfile(source=source):
                return self.changes.reload(source)
            case TakeSnapshot(camera_id=camera_id):
                return self._request_snapshot(camera_id)

    def revision(self) -> str:
        """The profile file's revision now (what a caller passes back to change it)."""
        return self.changes.revision()
