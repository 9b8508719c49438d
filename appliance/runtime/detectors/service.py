"""One detector process serving every camera: for accelerators that can be opened only once (an
Edge TPU, one GPU context), and for many cameras on one CPU (`runtime.shared_detector: yes`),
where the model is loaded once and the frames of the cameras that ask at the same moment are
detected together (`Detector.detect_all`). Workers reach it through `RemoteDetector`
(remote.py). Like a worker, it beats a heartbeat; the supervisor restarts it when it dies or
hangs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, Listener, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path

import numpy as np

from appliance.config.model import Profile
from appliance.runtime.detectors import create_detector
from appliance.runtime.detectors.registry import backend_info
from appliance.runtime.detectors.remote import AUTHKEY
from appliance.runtime.processes import ChildSetup, start_child
from appliance.runtime.tracking import detector_config_for
from appliance.runtime.types import Detection, Image

log = logging.getLogger(__name__)
POLL_S = 0.5


def uses_shared_detector(profile: Profile) -> bool:
    choice = profile.runtime.shared_detector
    return choice == "yes" or (choice == "auto" and backend_info(profile.detector.backend).owns_accelerator)


class DetectorService:
    """The supervisor's handle on the service process."""

    def __init__(self, context: SpawnContext, profile: Profile, child_setup: ChildSetup, run_dir: Path) -> None:
        self.context, self.profile, self.child_setup = context, profile, child_setup
        self.run_dir = run_dir
        self.address = str(run_dir / "detector.sock")
        self.heartbeat: Synchronized[float] = context.Value("d", 0.0)
        self.process: SpawnProcess | None = None
        self._stop: StopEvent | None = None
        self._started_at = 0.0

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._stop = self.context.Event()
        engines = Path(self.profile.storage.data_dir) / "engines"
        args = (self.profile, self.child_setup, self.address, engines, self._stop, self.heartbeat)
        self.process = self.context.Process(target=run_detector_service, args=args, name="detector", daemon=True)
        self._started_at = time.monotonic()
        self.process.start()
        log.info("detector service started (pid %d), shared by every camera", self.process.pid)

    def problem(self, *, stall_timeout_s: float, start_timeout_s: float) -> str | None:
        """Why the service needs a restart, or None while it is healthy."""
        assert self.process is not None
        if not self.process.is_alive():
            return f"exited with code {self.process.exitcode}"
        now, beat = time.monotonic(), self.heartbeat.value
        if beat == 0.0 and now - self._started_at > start_timeout_s:
            return f"did not load its model within {start_timeout_s:.0f} s"
        if beat and now - beat > stall_timeout_s:
            return f"hangs: no heartbeat for {now - beat:.0f} s"
        return None

    def stop(self, timeout: float) -> None:
        if self.process is None or self._stop is None:
            return
        self._stop.set()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.process = None


def run_detector_service(
    profile: Profile,
    child_setup: ChildSetup,
    address: str,
    cache_dir: Path,
    stop: StopEvent,
    heartbeat: Synchronized[float],
) -> None:
    """Process entry point: load the detector once, then serve frames until `stop` is set."""
    start_child("detector", child_setup, stop)
    detector = create_detector(detector_config_for(profile), cache_dir=cache_dir)
    Path(address).unlink(missing_ok=True)
    listener = Listener(address, family="AF_UNIX", authkey=AUTHKEY)
    clients: list[Connection] = []
    lock = threading.Lock()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection = listener.accept()
            except OSError:
                return
            with lock:
                clients.append(connection)

    threading.Thread(target=accept, name="detector-accept", daemon=True).start()
    log.info("detector service ready at %s", address)
    blocks: dict[str, SharedMemory] = {}
    try:
        while not stop.is_set():
            heartbeat.value = time.monotonic()
            with lock:
                current = list(clients)
            if not current:
                stop.wait(POLL_S / 10)
                continue
            asked = []
            for connection in wait(current, timeout=POLL_S):
                assert isinstance(connection, Connection)
                if (image := _receive(connection, blocks, clients, lock)) is not None:
                    asked.append((connection, image))
            _answer(asked, detector.detect_all)
    finally:
        listener.close()
        for block in blocks.values():
            block.close()
        detector.close()


def _receive(
    connection: Connection, blocks: dict[str, SharedMemory], clients: list[Connection], lock: threading.Lock
) -> Image | None:
    """The frame a worker asks about (in its shared-memory block), or None when it went away."""
    try:
        name, shape = connection.recv()
    except (EOFError, OSError):
        with lock:
            clients.remove(connection)
        return None
    if name not in blocks:
        # Workers own their blocks; all share the supervisor's resource tracker, which removes
        # blocks left by a killed worker when the supervisor exits.
        blocks[name] = SharedMemory(name=name)
    return np.ndarray(shape, dtype=np.uint8, buffer=blocks[name].buf)


def _answer(
    asked: list[tuple[Connection, Image]], detect_all: Callable[[Sequence[Image]], list[list[Detection]]]
) -> None:
    """One round: every camera that asked gets one frame detected, all of them at once (each
    worker waits for its answer before it sends again, so none can crowd out the others). Each
    answer carries the round's detection time: the worker counts the rest as queueing."""
    if not asked:
        return
    started = time.perf_counter()
    found = detect_all([image for _, image in asked])
    detecting_seconds = time.perf_counter() - started
    for (connection, _), detections in zip(asked, found, strict=True):
        try:
            connection.send((detections, detecting_seconds))
        except OSError:
            continue  # the worker went away meanwhile; the next wait() finds its end
