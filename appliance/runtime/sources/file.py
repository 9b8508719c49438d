"""Video files: every frame in order, at the file's own rate or as fast as possible
(historical mode), stamped with video time."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import cast

import cv2

from appliance.runtime.sources.base import FrameSource, SourceError, SourceStatus
from appliance.runtime.types import Frame, Image

log = logging.getLogger(__name__)
FALLBACK_FPS = 25.0


class FileSource(FrameSource):
    def __init__(self, camera_id: str, path: Path, *, realtime: bool) -> None:
        super().__init__(camera_id)
        self.path = path
        self.realtime = realtime
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._finished = False
        self._error: str | None = None
        self.fps = FALLBACK_FPS
        self.frame_count = 0

    def start(self) -> None:
        if not self.path.is_file():
            raise self._fail(f"video file {self.path} does not exist")
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise self._fail(f"cannot open {self.path}: not a video that FFmpeg can read")
        self._capture = capture
        self.fps = capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._started = time.monotonic()
        log.info(
            "camera %s: %s, %d frames at %.2f fps",
            self.camera_id,
            self.path,
            self.frame_count,
            self.fps,
        )

    def read(self, timeout: float = 0.0) -> Frame | None:
        if self._capture is None or self._finished:
            return None
        ok, image = self._capture.read()
        if not ok:
            self._finished = True
            if self._index == 0:
                raise self._fail(f"cannot decode any frame of {self.path}: the file is corrupt or empty")
            return None
        video_time = self._index / self.fps
        if self.realtime:
            time.sleep(max(0.0, self._started + video_time - time.monotonic()))
        frame = Frame(self.camera_id, self._index, video_time, cast(Image, image))
        self._index += 1
        return frame

    def stop(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    @property
    def status(self) -> SourceStatus:
        online = self._capture is not None and not self._finished
        return SourceStatus(online, self._index, 0, 0, self._finished, self._error)

    def _fail(self, message: str) -> SourceError:
        self._error = message
        return SourceError(f"camera {self.camera_id}: {message}")
