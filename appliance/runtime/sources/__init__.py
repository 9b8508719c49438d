"""Where frames come from: video files, and live RTSP, HTTP(S) and V4L2 cameras."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from appliance.runtime.sources.base import FrameSource, RateCap, SourceError, SourceStatus, redact_url
from appliance.runtime.sources.file import FileSource
from appliance.runtime.sources.live import Backoff, LiveSource

LIVE_SCHEMES = ("rtsp", "rtsps", "http", "https")

__all__ = [
    "Backoff",
    "FileSource",
    "FrameSource",
    "LiveSource",
    "RateCap",
    "SourceError",
    "SourceStatus",
    "open_source",
    "redact_url",
]


def open_source(
    camera_id: str,
    location: str | int,
    *,
    realtime: bool = True,
    fps_cap: float | None = None,
    resolution: tuple[int, int] | None = None,
    start_time: float | None = None,
) -> FrameSource:
    """The source for a camera's `source` setting (not yet started). Files play at their own rate
    when `realtime`, else as fast as they decode; their frames are timed from `start_time`."""
    live = isinstance(location, int) or location.startswith("/dev/")
    if live or urlsplit(str(location)).scheme.lower() in LIVE_SCHEMES:
        return LiveSource(camera_id, location, fps_cap=fps_cap, resolution=resolution)
    assert isinstance(location, str)
    parts = urlsplit(location)
    path = Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(location).expanduser()
    return FileSource(camera_id, path, realtime=realtime, fps_cap=fps_cap, resolution=resolution, start_time=start_time)
