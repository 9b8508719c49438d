"""The one path every profile change takes: the API, MQTT and OTA (through the dispatcher),
SIGHUP, and edits of the file noticed by its watcher.

A change is a new document, a named edit of the current one, or a reload of the files as they
are. On this path's own thread (so a slow load never holds up the supervisor), one change at a
time, it is loaded once and checked with the same rules and messages as `appliance validate`,
then against this machine (ports, the data folder's lock); only then is it written, atomically,
comments and layout kept, the previous version kept beside it (`<profile>.previous`). An invalid
one changes nothing and returns every problem. A reload of files this path loaded or wrote
itself, byte for byte, is answered "unchanged" without loading them again (the watcher sees the
path's own writes). The supervisor's loop then applies the change and the caller's future
resolves to the outcome.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import LoadedProfile, Location, ProfileError, ProfileIssue, load_profile
from appliance.config.edits import EditError, ProfileEdit
from appliance.config.yamlio import ProfileDocument, write_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeOutcome:
    """What became of a change."""

    applied: bool
    generation: int  # config generation after the change
    revision: str  # sha256 of the profile file after the change
    restarted: tuple[str, ...] = ()  # cameras whose workers restarted
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    reconfigured: tuple[str, ...] = ()  # cameras that took the change in place
    outputs: tuple[str, ...] = ()  # outputs reconfigured
    errors: tuple[ProfileIssue, ...] = ()  # why it was rejected; nothing changed
    conflict: bool = False  # rejected: the file changed since the revision the caller read
    refused: str | None = None  # rejected by the edit itself: EditError's code
    unchanged: bool = False  # valid, but the same as the running profile: nothing to do


@dataclass(frozen=True)
class ValidatedChange:
    """A change that passed (or failed) validation, for the supervisor's loop to apply."""

    source: str
    loaded: LoadedProfile | None
    revision: str  # of the profile file once the change is written (or refused)
    errors: tuple[ProfileIssue, ...] = ()
    conflict: bool = False
    refused: str | None = None
    unchanged: bool = False  # a reload of files as this path last loaded them: nothing loaded
    outcome: Future[ChangeOutcome] = field(default_factory=Future)


@dataclass(frozen=True)
class _Request:
    source: str
    text: str | None = None  # a whole new document
    edit: ProfileEdit | None = None  # or an edit of the current one; neither: reload the file as it is
    revision: str | None = None  # the revision the caller based the change on, if it cares
    outcome: Future[ChangeOutcome] = field(default_factory=Future)


def revision_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_revision(files: Sequence[Path], written: tuple[Path, str] | None = None) -> str:
    """One digest of a profile and every file it extends, as they are on disk, or with the one
    `written` (path, text) as it is about to be."""
    digest = hashlib.sha256()
    for path in files:
        content = written[1].encode() if written is not None and path == written[0] else path.read_bytes()
        digest.update(str(path).encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


class ProfileChanges:
    def __init__(
        self,
        path: Path,
        running: Callable[[], LoadedProfile],
        check: Callable[[LoadedProfile], list[ProfileIssue]] = lambda _: [],
    ) -> None:
        """`running` is the profile running now, which edits are checked against; `check` finds
        what a valid profile would still meet on this machine (preflight)."""
        self.path = path
        self._running = running
        self._check = check
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._validated: queue.Queue[ValidatedChange] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="profile-changes", daemon=True)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._waiting_reload: _Request | None = None
        self._known: tuple[Sequence[Path], str] | None = None  # the files last loaded here, and their digest
        started_with = running().files
        with contextlib.suppress(OSError):  # the files the runtime started with
            self._known = (started_with, files_revision(started_with))

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

    def edit(self, edit: ProfileEdit, *, source: str, revision: str | None = None) -> Future[ChangeOutcome]:
        """Change the current profile document in place (comments and layout are kept)."""
        return self._submit(_Request(source, edit=edit, revision=revision))

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
            text = self._new_text(request)  # first: an edit of what is not there is refused as such (404 before 412)
            if request.revision is not None and request.revision != self.revision():
                message = "the profile changed since it was read; read it again and redo the change"
                return self._refused(request, self._issue(message), conflict=True)
            if text is None and self._unchanged():
                log.debug("profile files unchanged since they were last loaded (%s)", request.source)
                return ValidatedChange(request.source, None, self.revision(), unchanged=True)
            files = self._running().files  # read before the load, so that a write meanwhile is not missed
            digest = self._digest(files, text)
            loaded = self._load(request.source, text)
            if issues := self._check(loaded):
                raise ProfileError(issues)
            if text is not None:
                write_atomically(self.path, text, keep_previous=True)
            self._known = (files, digest) if digest is not None and loaded.files == files else None
            return ValidatedChange(request.source, loaded, self.revision())
        except ProfileError as error:
            return self._refused(request, *error.issues)
        except EditError as error:
            return self._refused(request, self._issue(str(error)), refused=error.code)
        except (OSError, ValueError, KeyError, TypeError) as error:
            return self._refused(request, self._issue(f"cannot change the profile: {error}"))
        except Exception as error:  # whatever one change does, the path stays open for the next
            log.exception("a profile change from %s failed", request.source)
            return self._refused(request, self._issue(f"cannot change the profile: {type(error).__name__}"))

    def _load(self, source: str, text: str | None) -> LoadedProfile:
        self._known = None
        started = time.monotonic()
        loaded = load_profile(self.path, text)
        log.info("profile loaded for a change from %s in %.0f ms", source, (time.monotonic() - started) * 1000)
        return loaded

    def _digest(self, files: Sequence[Path], text: str | None) -> str | None:
        try:
            return files_revision(files, None if text is None else (self.path, text))
        except OSError:  # a file went away: the load says so
            return None

    def _unchanged(self) -> bool:
        """Whether the files are as this path last loaded or wrote them (or as the runtime
        started with, before any change)."""
        return self._known is not None and self._digest(self._known[0], None) == self._known[1]

    def _issue(self, message: str) -> ProfileIssue:
        return ProfileIssue(Location(str(self.path)), (), message)

    def _refused(
        self, request: _Request, *issues: ProfileIssue, conflict: bool = False, refused: str | None = None
    ) -> ValidatedChange:
        try:
            revision = self.revision()
        except OSError:
            revision = ""
        return ValidatedChange(request.source, None, revision, issues, conflict=conflict, refused=refused)

    def _new_text(self, request: _Request) -> str | None:
        if request.edit is None:
            return request.text
        document = ProfileDocument.load(self.path)
        request.edit.apply(document.data, self._running())
        return document.dumps()
