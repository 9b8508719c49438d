"""What every child process of the runtime (camera workers, the detector service) does first:
log as the profile says with its secrets masked, stop on SIGTERM, and stop when orphaned."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.synchronize import Event as StopEvent

from appliance.logs import LogFormat, configure_logging

log = logging.getLogger(__name__)
ORPHAN_GRACE_S = 5.0
EXIT_ORPHANED = 4


@dataclass(frozen=True)
class ChildSetup:
    """What a child process needs before anything else; picklable, handed over at spawn."""

    level: str
    log_format: LogFormat
    secrets: frozenset[str]
    parent_pid: int  # the supervisor

    @classmethod
    def here(cls, level: str, log_format: LogFormat, secrets: Iterable[str]) -> ChildSetup:
        """For children of this process."""
        return cls(level, log_format, frozenset(secrets), os.getpid())


def start_child(name: str, setup: ChildSetup, stop: StopEvent) -> None:
    """Set up a freshly spawned child process."""
    configure_logging(setup.level, setup.log_format, process=name, secrets=setup.secrets)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop_when_orphaned(stop, setup.parent_pid)


def stop_when_orphaned(stop: threading.Event | StopEvent, parent: int) -> None:
    """In a child process of `parent`: set `stop` if the supervisor dies without stopping us
    (kill -9, or a hung supervisor killed by the watchdog), even before this child got here, and
    exit outright if stopping then hangs: with nobody reading the event queue, its feeder can
    block on a full pipe for ever."""

    def watch() -> None:
        # Polls rather than waits: a process that dies inside a multiprocessing Event's wait()
        # leaves a later set() in the supervisor blocked for ever.
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the supervisor is gone: stopping")
        stop.set()
        time.sleep(ORPHAN_GRACE_S)
        log.warning("still running %.0f s after the supervisor died: exiting", ORPHAN_GRACE_S)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
