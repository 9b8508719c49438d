"""Live sources (RTSP, HTTP MJPEG/HLS, V4L2 cameras): a capture thread keeps only the newest
frame, counts the ones nobody read, and reconnects with capped exponential backoff."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import cv2

from appliance.runtime.sources.base import FrameSource, RateCap, SourceStatus, frame_size_problem, redact_url
from appliance.runtime.types import Frame, Image

log = logging.getLogger(__name__)
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
# RTSP over TCP passes NAT and firewalls and loses no packets; cameras all offer it.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: exponential, capped, with jitter."""

    initial_s: float = 1.0
    maximum_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5  # each delay is shortened by a random part of up to this fraction

    def delay(self, attempt: int) -> float:
        capped = min(self.maximum_s, self.initial_s * self.factor**attempt)
        return capped * (1 - self.jitter * random.random())


class LiveSource(FrameSource):
    def __init__(
        self,
        camera_id: str,
        location: str | int,
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        fps_cap: float | None = None,
        resolution: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(camera_id, fps_cap=fps_cap, resolution=resolution)
        self.location = location
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff = backoff or Backoff()
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: Frame | None = None
        self._decoded = self._delivered = self._dropped = self._reconnects = self._skipped = 0
        self._online = False
        self._error: str | None = None

    @property
    def name(self) -> str:
        return redact_url(self.location) if isinstance(self.location, str) else f"camera index {self.location}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.camera_id}", daemon=True)
        self._thread.start()

    def read(self, timeout: float) -> Frame | None:
        with self._condition:
            self._condition.wait_for(lambda: self._latest is not None or self._stopping.is_set(), timeout)
            frame, self._latest = self._latest, None
            if frame is not None:
                self._delivered += 1
            return frame

    def stop(self) -> None:
        self._stopping.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.read_timeout_s + self.open_timeout_s)
            self._thread = None

    @property
    def status(self) -> SourceStatus:
        with self._condition:
            return SourceStatus(self._online, self._delivered, self._dropped, self._reconnects, False, self._error,
                                self._skipped)  # fmt: skip

    def _run(self) -> None:
        attempt, connected_before = 0, False
        while not self._stopping.is_set():
            capture = self._open()
            if capture is None:
                self._stopping.wait(self.backoff.delay(attempt))
                attempt += 1
                continue
            if connected_before:
                self._reconnects += 1
                log.info(
                    "camera %s: %s back online after %d attempt(s)",
                    self.camera_id,
                    self.name,
                    attempt + 1,
                )
            else:
                log.info("camera %s: %s online", self.camera_id, self.name)
            connected_before, attempt = True, 0
            self._set_online(True, None)
            self._pump(capture)
            capture.release()

    def _open(self) -> cv2.VideoCapture | None:
        if isinstance(self.location, int) or self.location.startswith("/dev/"):
            capture = cv2.VideoCapture(self.location, cv2.CAP_V4L2)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.read_timeout_s * 1000),
                cv2.CAP_PROP_N_THREADS,  # one decoding thread a camera: the cameras share the cores, and
                1,  # this thread's CPU time is the decode time (FFmpeg's own threads would hide it)
            ]
            capture = cv2.VideoCapture(self.location, cv2.CAP_FFMPEG, params)
        problem = frame_size_problem(capture) if capture.isOpened() else self._diagnose()
        if problem is None:
            return capture
        capture.release()
        self._set_online(False, f"cannot open {self.name}: {problem}")
        return None

    def _pump(self, capture: cv2.VideoCapture) -> None:
        """Decode until the stream fails or we stop, keeping only the newest frame; with
        fps_cap, the frames the cap does not keep (RateCap) are grabbed, not converted. A frame's
        decode time is this thread's CPU time since the last frame kept (decoding it and the
        frames skipped before it, converting, resizing): waiting for the camera is not in it."""
        cap = RateCap(self.min_interval_s)
        spent_from = time.thread_time()
        while not self._stopping.is_set():
            if not capture.grab():
                self._set_online(
                    False,
                    f"{self.name}: stream ended or sent nothing for {self.read_timeout_s:g} s",
                )
                return
            if not cap.keep(time.monotonic()):
                self._skipped += 1
                continue
            ok, image = capture.retrieve()
            if not ok:
                continue
            image = self.shaped(cast(Image, image))
            spent_to = time.thread_time()
            frame = Frame(self.camera_id, self._decoded, time.time(), image, spent_to - spent_from)
            spent_from = spent_to
            with self._condition:
                if self._latest is not None:
                    self._dropped += 1
                self._latest = frame
                self._decoded += 1
                self._condition.notify_all()

    def _set_online(self, online: bool, error: str | None) -> None:
        with self._condition:
            changed = online != self._online or error != self._error
            self._online, self._error = online, error
        if changed and error:
            log.warning("camera %s offline: %s", self.camera_id, error)

    def _diagnose(self) -> str:
        """Why a location gives no video, as far as a plain TCP connection can tell."""
        if isinstance(self.location, int) or self.location.startswith("/dev/"):
            exists = isinstance(self.location, int) or Path(self.location).exists()
            return "the device cannot be opened" if exists else "no such device"
        parts = urlsplit(self.location)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return "FFmpeg cannot read it"
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        try:
            with socket.create_connection((parts.hostname, port), timeout=self.open_timeout_s):
                pass
        except socket.gaierror:
            return f"host name '{parts.hostname}' does not resolve"
        except TimeoutError:
            return f"no answer from {parts.hostname}:{port} within {self.open_timeout_s:g} s"
        except OSError as error:
            return f"cannot connect to {parts.hostname}:{port} ({error.strerror or error})"
        return (
            f"{parts.hostname}:{port} accepts connections but sends no video "
            "(wrong path, credentials or codec, or too slow to answer)"
        )
