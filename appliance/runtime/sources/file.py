"""Video files: every frame in order (or those `fps_cap` keeps, chosen by video time), at the
file's own rate or as fast as possible (historical mode), stamped with video time. A thread
decodes a few frames ahead, so decoding overlaps detection."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import cast

import cv2

from appliance.files import regular_file_problem
from appliance.runtime.sources.base import FrameSource, SourceError, SourceStatus, frame_size_problem
from appliance.runtime.types import Frame, Image

log = logging.getLogger(__name__)
FALLBACK_FPS = 25.0
DECODE_AHEAD = 4  # frames
DECODE_THREADS = 1  # one decoding thread leaves the other cores to the detector
MISSING_FRAMES_ALLOWED = 2  # a header's frame count may be an estimate: fewer frames than 1 % or this are no loss


def _identity(path: Path) -> tuple[int, ...]:
    """What changes when a file is replaced, truncated or written to."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class FileSource(FrameSource):
    def __init__(
        self,
        camera_id: str,
        path: Path,
        *,
        realtime: bool,
        fps_cap: float | None = None,
        resolution: tuple[int, int] | None = None,
        start_time: float | None = None,
    ) -> None:
        """`start_time`: the Unix time of the first frame; by default the time the file starts
        playing when `realtime` (a file standing in for a camera), else 0 (the video's own time)."""
        super().__init__(camera_id, fps_cap=fps_cap, resolution=resolution)
        self.path = path
        self.realtime = realtime
        self.start_time = start_time
        self._first_frame_at = 0.0
        self.fps = FALLBACK_FPS
        self.frame_count = 0
        self._decoded: queue.Queue[tuple[int, Image, float] | None] = queue.Queue(maxsize=DECODE_AHEAD)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._delivered = self._skipped = 0
        self._position = 0  # frames of the file passed, kept or skipped
        self._finished = False
        self._error: str | None = None
        self._opened_as: tuple[int, ...] = ()

    def start(self) -> None:
        if problem := regular_file_problem(self.path):
            raise self._fail(f"video file {self.path} {problem}")
        self._opened_as = _identity(self.path)
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, DECODE_THREADS])
        if not capture.isOpened():
            raise self._fail(f"cannot open {self.path}: not a video that FFmpeg can read")
        if problem := frame_size_problem(capture):
            capture.release()
            raise self._fail(f"{self.path}: {problem}")
        decoding = time.perf_counter()
        ok, first = capture.read()
        if not ok:
            capture.release()
            raise self._fail(f"cannot decode any frame of {self.path}: the file is corrupt or empty")
        self.fps = capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._decoded.put((0, self.shaped(cast(Image, first)), time.perf_counter() - decoding))
        self._thread = threading.Thread(
            target=self._decode, args=(capture,), name=f"decode-{self.camera_id}", daemon=True
        )
        self._thread.start()
        self._started = time.monotonic()
        self._first_frame_at = self.start_time if self.start_time is not None else time.time() if self.realtime else 0.0
        log.info("camera %s: %s, %d frames at %.2f fps", self.camera_id, self.path, self.frame_count, self.fps)

    def read(self, timeout: float = 0.0) -> Frame | None:
        """The next frame, waiting for it to decode; None at the end of the file."""
        if self._thread is None or self._finished:
            return None
        item = self._decoded.get()
        if item is None:
            self._finished = True
            return None
        index, image, decode_seconds = item
        video_time = index / self.fps
        if self.realtime:
            time.sleep(max(0.0, self._started + video_time - time.monotonic()))
        self._delivered += 1
        self._position = index + 1
        return Frame(self.camera_id, index, self._first_frame_at + video_time, image, decode_seconds)

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
        return SourceStatus(online, self._delivered, 0, 0, self._finished, self._error, self._skipped)

    @property
    def progress(self) -> tuple[int, int]:
        """Frames of the file passed so far, and frames in the file."""
        return self._position, self.frame_count

    def _decode(self, capture: cv2.VideoCapture) -> None:
        index, next_due = 0, self.min_interval_s
        try:
            while not self._stopping.is_set():
                index += 1
                video_time = index / self.fps
                if video_time + 1e-9 < next_due:  # fps_cap: skip without converting
                    if not capture.grab():
                        break
                    self._skipped += 1
                    continue
                next_due = max(next_due + self.min_interval_s, video_time)
                decoding = time.perf_counter()
                ok, image = capture.read()
                if not ok:
                    break
                self._put((index, self.shaped(cast(Image, image)), time.perf_counter() - decoding))
            if not self._stopping.is_set() and (problem := self._ended_early(index)):
                self._error = problem
                log.warning("camera %s: %s", self.camera_id, problem)
            self._put(None)
        finally:
            capture.release()

    def _ended_early(self, frames_read: int) -> str | None:
        """Why the file ended before its end: it changed while it was read, or it holds fewer
        frames than its header announces (cut short). None when it ended whole."""
        where = f"at frame {frames_read} of {self.frame_count}"
        try:
            changed = _identity(self.path) != self._opened_as
        except OSError:
            return f"video file {self.path} was removed while it was read; it ended {where}"
        if changed:
            return f"video file {self.path} changed while it was read; it ended {where}"
        if self.frame_count - frames_read > max(MISSING_FRAMES_ALLOWED, self.frame_count // 100):
            return f"video file {self.path} is cut short: it ended {where}, which its header announces"
        return None

    def _put(self, item: tuple[int, Image, float] | None) -> None:
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
