"""What the API's routes work with: the running profile, the runtime state, the dispatcher that
executes their commands, and camera snapshots."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from appliance.api.errors import ApiError
from appliance.config import LoadedProfile
from appliance.config.secrets import REDACTOR
from appliance.runtime.changes import ChangeOutcome
from appliance.runtime.commands import Dispatcher, ProfileCommand, TakeSnapshot
from appliance.runtime.events import Snapshot
from appliance.runtime.state import RuntimeState

CHANGE_TIMEOUT_S = 60.0
SNAPSHOT_TIMEOUT_S = 5.0
REFUSAL_STATUS = {"not_found": 404, "defined_elsewhere": 409, "exists": 409}  # EditError codes; others 422
MAX_LIVE_VIEWS = 4  # each holds one of the server's threads while it is open


class Snapshots:
    """The newest snapshot of each camera; a caller asks for one and waits for it."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._latest: dict[str, tuple[Snapshot, float]] = {}  # and when it arrived (monotonic)
        self._arrived = threading.Condition()

    def offer(self, snapshot: Snapshot) -> None:
        with self._arrived:
            self._latest[snapshot.camera_id] = (snapshot, time.monotonic())
            self._arrived.notify_all()

    def take(self, camera_id: str, newer_than: float = 0.0) -> Snapshot:
        """A snapshot made after this call began (or after `newer_than`, a monotonic time)."""
        asked = time.monotonic()
        if not self._dispatcher.execute(TakeSnapshot(camera_id, source="api")):
            raise ApiError(409, "camera_not_running", f"camera '{camera_id}' is not running")
        deadline = asked + SNAPSHOT_TIMEOUT_S
        with self._arrived:
            while True:
                latest = self._latest.get(camera_id)
                if latest is not None and latest[1] > max(asked, newer_than):
                    return latest[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(504, "no_frame", f"camera '{camera_id}' sent no frame in {SNAPSHOT_TIMEOUT_S:.0f} s")
                self._arrived.wait(left)


class LiveViews:
    """A count of the live views open, at most MAX_LIVE_VIEWS; one more is answered 503."""

    def __init__(self, limit: int = MAX_LIVE_VIEWS) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def open(self) -> Callable[[], None]:
        """Takes a slot; the function that gives it back."""
        if not self._slots.acquire(blocking=False):
            message = f"{self.limit} live views are open, the most this device serves; close one or use snapshots"
            raise ApiError(503, "too_many_live_views", message, retry_after_s=10)
        return self._slots.release


@dataclass
class ApiContext:
    state: RuntimeState
    dispatcher: Dispatcher
    snapshots: Snapshots
    auth: bool = True
    live_views: LiveViews = field(default_factory=LiveViews)

    @property
    def loaded(self) -> LoadedProfile:
        return self.state.loaded

    def revision(self) -> str:
        return self.dispatcher.revision()

    def change(self, command: ProfileCommand) -> ChangeOutcome:
        """The outcome of a profile command; 412 when the file changed since the caller read it,
        404, 409 or 422 when the edit refused (its code says why), 422 with every problem when
        the result is invalid (nothing changed then)."""
        try:
            outcome = self.dispatcher.execute(command).result(CHANGE_TIMEOUT_S)
        except FutureTimeout:
            raise ApiError(504, "change_timeout", "the change did not finish in time; read the profile again") from None
        except RuntimeError as error:
            raise ApiError(503, "stopping", str(error)) from None
        if outcome.conflict:
            raise ApiError(412, "stale", "the profile changed since it was read (If-Match); read it again")
        if outcome.refused is not None:
            message = "; ".join(issue.message for issue in outcome.errors)
            raise ApiError(REFUSAL_STATUS.get(outcome.refused, 422), outcome.refused, message)
        if not outcome.applied:
            details = [REDACTOR.redact(str(issue)) for issue in outcome.errors]
            raise ApiError(422, "invalid_profile", "the change makes the profile invalid; nothing changed", details)
        return outcome
