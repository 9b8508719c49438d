"""A camera worker's handle on the shared detector service: `detect` as on a local detector,
the frame passed through a shared-memory block of the worker's own, only its name and shape
sent over the service's Unix socket."""

from __future__ import annotations

import time
from multiprocessing.connection import Client
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from appliance.runtime.detectors.base import DetectorError
from appliance.runtime.types import Detection, Image

AUTHKEY = b"appliance-detector"
CONNECT_TIMEOUT_S = 120.0


class RemoteDetector:
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
        self.queued_seconds = 0.0  # how long the last frame waited for the service's other cameras

    def detect(self, image: Image) -> list[Detection]:
        if self.block is None or self.block.size < image.nbytes:
            self._release()
            self.block = SharedMemory(create=True, size=image.nbytes)
        np.ndarray(image.shape, dtype=np.uint8, buffer=self.block.buf)[...] = image
        asked = time.perf_counter()
        try:
            self.connection.send((self.block.name, image.shape))
            detections: list[Detection]
            detections, detecting_seconds = self.connection.recv()
        except (EOFError, OSError) as error:
            raise DetectorError(f"the detector service went away ({error})") from None
        self.queued_seconds = max(0.0, time.perf_counter() - asked - detecting_seconds)
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
