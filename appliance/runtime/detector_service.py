"""One detector process serving every camera, for accelerators that can be opened only once
(an Edge TPU, one GPU context). Workers write each frame into their own shared-memory block and
send only its name and shape over a Unix socket; the service answers with the detections."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener, wait
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path

import numpy as np

from appliance.config.model import Profile
from appliance.runtime.detectors import DetectorError, create_detector
from appliance.runtime.events import stop_when_orphaned
from appliance.runtime.types import Detection, Image

log = logging.getLogger(__name__)
SHARED_BACKENDS = ("edgetpu", "tensorrt")
AUTHKEY = b"appliance-detector"
CONNECT_TIMEOUT_S = 120.0


def uses_shared_detector(profile: Profile) -> bool:
    choice = profile.runtime.shared_detector
    return choice == "yes" or (choice == "auto" and profile.detector.backend in SHARED_BACKENDS)


def run_detector_service(profile: Profile, profile_dir: Path, address: str, cache_dir: Path, stop: StopEvent) -> None:
    """Process entry point: load the detector once, then serve frames until `stop` is set."""
    logging.basicConfig(
        level=profile.logging.level.upper(), format="%(asctime)s %(levelname)s [detector] %(name)s: %(message)s"
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop_when_orphaned(stop)
    detector = create_detector(profile.detector, profile_dir, cache_dir=cache_dir)
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
            with lock:
                current = list(clients)
            if not current:
                time.sleep(0.05)
                continue
            for connection in wait(current, timeout=0.5):
                assert isinstance(connection, Connection)
                _serve(connection, detector.detect, blocks, clients, lock)
    finally:
        listener.close()
        for block in blocks.values():
            block.close()
        detector.close()


def _serve(
    connection: Connection,
    detect: Callable[[Image], list[Detection]],
    blocks: dict[str, SharedMemory],
    clients: list[Connection],
    lock: threading.Lock,
) -> None:
    try:
        name, shape = connection.recv()
    except (EOFError, OSError):
        with lock:
            clients.remove(connection)
        return
    if name not in blocks:
        # Workers own their blocks; all share the supervisor's resource tracker, which removes
        # blocks left by a killed worker when the supervisor exits.
        blocks[name] = SharedMemory(name=name)
    image = np.ndarray(shape, dtype=np.uint8, buffer=blocks[name].buf)
    connection.send(detect(image))


class RemoteDetector:
    """A worker's handle on the detector service; `detect` as on a local detector."""

    def __init__(self, address: str) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                self.connection = Client(address, family="AF_UNIX", authkey=AUTHKEY)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise DetectorError(f"the detector service at {address} did not start") from None
                time.sleep(0.2)
        self.block: SharedMemory | None = None

    def detect(self, image: Image) -> list[Detection]:
        if self.block is None or self.block.size < image.nbytes:
            self._release()
            self.block = SharedMemory(create=True, size=image.nbytes)
        np.ndarray(image.shape, dtype=np.uint8, buffer=self.block.buf)[...] = image
        try:
            self.connection.send((self.block.name, image.shape))
            detections: list[Detection] = self.connection.recv()
        except (EOFError, OSError) as error:
            raise DetectorError(f"the detector service went away ({error})") from None
        return detections

    def describe(self) -> str:
        return "shared detector service"

    def close(self) -> None:
        self.connection.close()
        self._release()

    def _release(self) -> None:
        if self.block is not None:
            self.block.close()
            self.block.unlink()
            self.block = None
