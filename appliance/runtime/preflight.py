"""What this machine must offer a profile before the runtime takes it: a readable model with the
pinned digest, a writable data_dir that no other runtime uses, metrics and API addresses free to
listen on. `appliance validate` leaves these out (a profile may be checked on a build machine); the
runtime checks them at start and before applying any change, so a change that would break a
working camera is refused while the old profile keeps running."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from appliance.config import LoadedProfile, ProfileIssue
from appliance.models import ModelError, verify_model

LOCK_FILE = ".lock"
MIN_FREE_BYTES = 1 << 20  # less than this free in data_dir, and the runtime does not start


def preflight(loaded: LoadedProfile, running: LoadedProfile | None = None) -> list[ProfileIssue]:
    """Problems `loaded` would meet on this machine; `running` is the profile in use, whose data_dir
    lock and listening addresses are ours already."""
    issues = []
    for key, model in loaded.profile.model_files().items():
        try:
            verify_model(Path(str(model.path)), model.sha256, ".".join(key))
        except ModelError as error:
            issues.append(loaded.issue((*key, "path"), str(error)))
    data_dir = Path(loaded.profile.storage.data_dir)
    ours = running is not None and Path(running.profile.storage.data_dir) == data_dir
    if problem := data_dir_problem(data_dir, locked_by_us=ours):
        issues.append(loaded.issue(("storage", "data_dir"), problem))
    for section in ("metrics", "api"):
        if (listen := _new_address(section, loaded, running)) and (problem := listen_problem(listen)):
            issues.append(loaded.issue((section, "listen"), problem))
    return issues


def _new_address(section: str, loaded: LoadedProfile, running: LoadedProfile | None) -> str | None:
    """The address `loaded` serves `section` (metrics, api) on, unless the running profile serves
    it there already."""
    wanted = getattr(loaded.profile, section)
    served = getattr(running.profile, section) if running is not None else None
    if not wanted.enabled or (served is not None and served.enabled and served.listen == wanted.listen):
        return None
    return str(wanted.listen)


def data_dir_problem(folder: Path, *, locked_by_us: bool = False) -> str | None:
    """Why the runtime cannot keep its state in `folder`, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create {folder}: {error.strerror or error}"
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not a folder this process can write in"
    if locked_by_us:
        return None  # ours already: a disk that filled since is the outputs' to handle, not a reason to refuse
    disk = os.statvfs(folder)
    if (free := disk.f_bavail * disk.f_frsize) < MIN_FREE_BYTES:
        return f"{folder} has {free // 1024} KiB free; the runtime needs {MIN_FREE_BYTES // (1 << 20)} MiB to start"
    try:
        with DataDirLock(folder):
            pass
    except DataDirBusyError as error:
        return str(error)
    except OSError as error:
        return f"cannot lock {folder}: {error.strerror or error}"
    return None


def listen_problem(listen: str) -> str | None:
    """Why nothing could listen on HOST:PORT now (in use, no such address), or None."""
    host, _, port = listen.rpartition(":")
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host.strip("[]"), int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server does
            probe.bind(address)
    except OSError as error:
        return f"cannot listen on {listen}: {error.strerror or error}"
    return None


class DataDirBusyError(Exception):
    """Another runtime holds the data_dir."""


class DataDirLock:
    """An exclusive lock on a data_dir for as long as a runtime uses it: two runtimes on one
    folder would write the same event files. The lock file holds the owner's pid, for the message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._descriptor: int | None = None

    def acquire(self) -> None:
        path = self.folder / LOCK_FILE
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise DataDirBusyError(
                f"{self.folder} is in use by another appliance runtime (pid {owner}); "
                "stop it, or give this profile another storage.data_dir"
            ) from None
        try:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
        except OSError:
            os.close(descriptor)
            raise
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing drops the lock
            self._descriptor = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
