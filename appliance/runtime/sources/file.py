"""Video files: every frame in order, at the file's own rate or as fast as possible
(historical mode), stamped with video time. A thread decodes a few frames ahead, so decoding
overlaps detection."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import cast

import cv2

from appliance.runtime.sources.base import FrameSource, SourceError, SourceStatus
from appliance.runtime.types import Frame, Image

log = logging.getLogger(__name__)
FALLBACK_FPS = 25.0
DECODE_AHEAD = 4  # frames
DECODE_THREADS = 1  # one decoding thread leaves the other cores to the detector


class FileSource(FrameSource):
    def __init__(self, camera_id: str, path: Path, *, realtime: bool) -> None:
        super().__init__(camera_id)
        self.path = path
        self.realtime = realtime
        self.fps = FALLBACK_FPS
        self.frame_count = 0
        self._decoded: queue.Queue[Image | None] = queue.Queue(maxsize=DECODE_AHEAD)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._index = 0
        self._finished = False
        self._error: str | None = None

    def start(self) -> None:
        if not self.path.is_file():
            raise self._fail(f"video file {self.path} does not exist")
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, DECODE_THREADS])
        if not capture.isOpened():
            raise self._fail(f"cannot open {self.path}: not a video that FFmpeg can read")
        ok, first = capture.read()
        if not ok:
            capture.release()
            raise self._fail(f"cannot decode any frame of {self.path}: the file is corrupt or empty")
        self.fps = capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._decoded.put(cast(Image, first))
        self._thread = threading.Thread(
            target=self._decode, args=(capture,), name=f"decode-{self.camera_id}", daemon=True
        )
        self._thread.start()
        self._started = time.monotonic()
        log.info("camera %s: %s, %d frames at %.2f fps", self.camera_id, self.path, self.frame_count, self.fps)

    def read(self, timeout: float = 0.0) -> Frame | None:
        """The next frame, waiting for it to decode; None at the end of the file."""
        if self._thread is None or self._finished:
            return None
        image = self._decoded.get()
        if image is None:
            self._finished = True
            return None
        video_time = self._index / self.fps
        if self.realtime:
            time.sleep(max(0.0, self._started + video_time - time.monotonic()))
        frame = Frame(self.camera_id, self._index, video_time, image)
        self._index += 1
        return frame

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            while self._thread.is_alive():  # unblock a decoder waiting for room
                self._drain()
                self._thread.join(0.05)
            self._thread = None

    @property
    def status(self) -> SourceStatus:
        online = self._thread is not None and not self._finished
        return SourceStatus(online, self._index, 0, 0, self._finished, self._error)

    def _decode(self, capture: cv2.VideoCapture) -> None:
        try:
            while not self._stopping.is_set():
                ok, image = capture.read()
                self._put(cast(Image, image) if ok else None)
                if not ok:
                    return
        finally:
            capture.release()

    def _put(self, item: Image | None) -> None:
        while not self._stopping.is_set():
            try:
                self._decoded.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _drain(self) -> None:
        try:
            while True:
                self._decoded.get_nowait()
        except queue.Empty:
            return

    def _fail(self, message: str) -> SourceError:
        self._error = message
        return SourceError(f"camera {self.camera_id}: {message}")
