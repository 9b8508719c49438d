"""The one path every profile change takes: SIGHUP and edits of the file now; MQTT, the API and
OTA next.

A change is a new document, an edit of the current one, or a reload of the file as it is. On
this path's own thread (so a slow load never holds up the supervisor), one change at a time, it
is validated with the same rules and messages as `appliance validate`; an invalid one changes
nothing and returns every problem. A valid document or edit is written atomically, comments and
layout kept, the previous version kept beside it (`<profile>.previous`). The supervisor's loop
then applies it (only the cameras that changed restart, outputs are reconfigured) and the caller's
future resolves to the outcome."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from appliance.config import LoadedProfile, Location, ProfileError, ProfileIssue, load_profile
from appliance.config.yamlio import ProfileDocument, write_atomically

log = logging.getLogger(__name__)
Edit = Callable[[CommentedMap], None]


@dataclass(frozen=True)
class ChangeOutcome:
    """What became of a change."""

    applied: bool
    generation: int  # config generation after the change
    revision: str  # sha256 of the profile file after the change
    restarted: tuple[str, ...] = ()  # cameras whose workers restarted
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # outputs reconfigured
    errors: tuple[ProfileIssue, ...] = ()  # why it was rejected; nothing changed
    conflict: bool = False  # rejected: the file changed since the revision the caller read
    unchanged: bool = False  # valid, but the same as the running profile: nothing to do


@dataclass(frozen=True)
class ValidatedChange:
    """A change that passed (or failed) validation, for the supervisor's loop to apply."""

    source: str
    loaded: LoadedProfile | None
    revision: str  # of the profile file once the change is written (or refused)
    errors: tuple[ProfileIssue, ...] = ()
    conflict: bool = False
    outcome: Future[ChangeOutcome] = field(default_factory=Future)


@dataclass(frozen=True)
class _Request:
    source: str
    text: str | None = None  # a whole new document
    edit: Edit | None = None  # or an edit of the current one; neither: reload the file as it is
    revision: str | None = None  # the revision the caller based the change on, if it cares
    outcome: Future[ChangeOutcome] = field(default_factory=Future)


def revision_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ProfileChanges:
    def __init__(self, path: Path, check: Callable[[LoadedProfile], list[ProfileIssue]] = lambda _: []) -> None:
        """`check` finds what a valid profile would still meet on this machine (preflight)."""
        self.path = path
        self._check = check
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._validated: queue.Queue[ValidatedChange] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="profile-changes", daemon=True)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._waiting_reload: _Request | None = None

    def start(self) -> None:
        self._thread.start()

    def reload(self, source: str = "reload") -> Future[ChangeOutcome]:
        """Apply the profile file (and what it extends) as it is on disk now. A reload still
        waiting its turn takes this one in: a burst of file events loads the profile once."""
        with self._lock:
            if self._waiting_reload is not None:
                return self._waiting_reload.outcome
            request = self._waiting_reload = _Request(source)
        return self._submit(request)

    def replace(self, text: str, *, source: str, revision: str | None = None) -> Future[ChangeOutcome]:
        """Make `text` the profile."""
        return self._submit(_Request(source, text=text, revision=revision))

    def edit(self, change: Edit, *, source: str, revision: str | None = None) -> Future[ChangeOutcome]:
        """Change the current profile document in place (comments and layout are kept)."""
        return self._submit(_Request(source, edit=change, revision=revision))

    def revision(self) -> str:
        return revision_of(self.path)

    def apply_pending(self, apply: Callable[[ValidatedChange], ChangeOutcome]) -> None:
        """On the supervisor's loop: apply every change validated since the last call."""
        while True:
            try:
                change = self._validated.get_nowait()
            except queue.Empty:
                return
            try:
                change.outcome.set_result(apply(change))
            except Exception as error:
                log.exception("applying a profile change failed")
                change.outcome.set_exception(error)

    def close(self) -> None:
        """Stop taking changes; callers still waiting are told the runtime is stopping."""
        self._closed.set()
        self._requests.put(None)
        self._thread.join(5)
        for pending in (self._requests, self._validated):
            while True:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
                if item is not None and not item.outcome.done():
                    item.outcome.set_exception(RuntimeError("the runtime is stopping"))

    def _submit(self, request: _Request) -> Future[ChangeOutcome]:
        if self._closed.is_set():
            request.outcome.set_exception(RuntimeError("the runtime is stopping"))
        else:
            self._requests.put(request)
        return request.outcome

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            with self._lock:
                if request is self._waiting_reload:
                    self._waiting_reload = None
            change = self._validate(request)
            self._validated.put(change)
            try:  # one change at a time: the next one starts from this one's result
                request.outcome.set_result(change.outcome.result())
            except Exception as error:
                if not request.outcome.done():
                    request.outcome.set_exception(error)

    def _validate(self, request: _Request) -> ValidatedChange:
        try:
            if request.revision is not None and request.revision != self.revision():
                message = "the profile changed since it was read; read it again and redo the change"
                return self._refused(request, self._issue(message), conflict=True)
            text = self._new_text(request)
            loaded = load_profile(self.path, text)
            if issues := self._check(loaded):
                raise ProfileError(issues)
            if text is not None:
                write_atomically(self.path, text, keep_previous=True)
            return ValidatedChange(request.source, loaded, self.revision())
        except ProfileError as error:
            return self._refused(request, *error.issues)
        except (OSError, ValueError, KeyError, TypeError) as error:
            return self._refused(request, self._issue(f"cannot change the profile: {error}"))
        except Exception as error:  # whatever one change does, the path stays open for the next
            log.exception("a profile change from %s failed", request.source)
            return self._refused(request, self._issue(f"cannot change the profile: {type(error).__name__}"))

    def _issue(self, message: str) -> ProfileIssue:
        return ProfileIssue(Location(str(self.path)), (), message)

    def _refused(self, request: _Request, *issues: ProfileIssue, conflict: bool = False) -> ValidatedChange:
        try:
            revision = self.revision()
        except OSError:
            revision = ""
        return ValidatedChange(request.source, None, revision, issues, conflict=conflict)

    def _new_text(self, request: _Request) -> str | None:
        if request.edit is None:
            return request.text
        document = ProfileDocument.load(self.path)
        request.edit(document.data)
        return document.dumps()
