"""The frame source interface and what every source reports about itself."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import cv2

from appliance.runtime.types import Frame, Image

# FFmpeg and OpenCV would print every failed connection on stderr; sources report problems
# themselves, with reasons, through logging.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


MAX_FRAME_PIXELS = 4096 * 4096  # 4K UHD and 16 MP cameras fit; one such frame is 48 MiB decoded


def frame_size_problem(capture: cv2.VideoCapture) -> str | None:
    """Why frames of this size are refused, read from the stream's header before any frame is
    decoded (one 12000x12000 frame once took 1.4 GB); None when they fit or the size is unknown."""
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height <= MAX_FRAME_PIXELS:
        return None
    return (f"frames of {width}x{height} ({width * height / 1e6:.0f} MP) are over the {MAX_FRAME_PIXELS / 1e6:.1f} MP "
            "a camera may send; lower the stream's resolution")  # fmt: skip


class SourceError(Exception):
    """A source that cannot deliver frames; the message says which and why."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    online: bool
    frames: int  # frames delivered by read()
    dropped: int  # frames decoded but replaced by a newer one before anyone read them
    reconnects: int  # times a lost stream was opened again
    finished: bool  # a file reached its end
    error: str | None  # the last problem, None while healthy
    skipped: int = 0  # frames fps_cap skipped: read, never converted


class RateCap:
    """Which frames of a live stream `fps_cap` keeps, by arrival time: a frame is kept when it
    comes no more than a quarter interval before the next one is due, and the one after is due a
    whole interval after this due time (not after the arrival), so early and late arrivals even
    out and 5 means 5 frames a second, not the 4.3 that "an interval since the last one kept"
    gives on a 25 fps stream. A stream that falls more than an interval behind starts afresh."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._due = float("-inf")

    def keep(self, now: float) -> bool:
        if now < self._due - self.interval_s / 4:
            return False
        self._due = (self._due if now - self._due < self.interval_s else now) + self.interval_s
        return True


class FrameSource(ABC):
    """Frames of one camera. `read` gives the next frame (files) or the newest one (live).

    With `fps_cap`, frames closer than 1/fps_cap to the last one kept are grabbed but never
    converted to an image; with `resolution`, kept frames are resized to [width, height]."""

    def __init__(
        self, camera_id: str, *, fps_cap: float | None = None, resolution: tuple[int, int] | None = None
    ) -> None:
        self.camera_id = camera_id
        self.min_interval_s = 1 / fps_cap if fps_cap else 0.0
        self.resolution = resolution

    def shaped(self, image: Image) -> Image:
        """The image at the configured resolution."""
        if self.resolution is None or (image.shape[1], image.shape[0]) == self.resolution:
            return image
        shrinking = self.resolution[0] < image.shape[1]
        return cast(
            Image, cv2.resize(image, self.resolution, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        )

    @abstractmethod
    def start(self) -> None:
        """Open the source. Files raise SourceError; live sources retry in the background."""

    @abstractmethod
    def read(self, timeout: float) -> Frame | None:
        """The next frame, or None when none came within `timeout` or the file has ended."""

    @abstractmethod
    def stop(self) -> None:
        """Release the source; safe to call twice."""

    @property
    @abstractmethod
    def status(self) -> SourceStatus: ...

    def __enter__(self) -> FrameSource:
        self.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for logs and status messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
