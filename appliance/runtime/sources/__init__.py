"""Where frames come from: video files, and live RTSP, HTTP(S) and V4L2 cameras."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from appliance.runtime.sources.base import FrameSource, SourceError, SourceStatus, redact_url
from appliance.runtime.sources.file import FileSource
from appliance.runtime.sources.live import Backoff, LiveSource

LIVE_SCHEMES = ("rtsp", "rtsps", "http", "https")

__all__ = [
    "Backoff",
    "FileSource",
    "FrameSource",
    "LiveSource",
    "SourceError",
    "SourceStatus",
    "open_source",
    "redact_url",
]


def open_source(
    camera_id: str, location: str | int, *, realtime: bool = True, base_dir: Path | None = None
) -> FrameSource:
    """The source for a camera's `source` setting (not yet started). Files play at their own rate
    when `realtime`, else as fast as they decode; relative paths are relative to `base_dir`."""
    if isinstance(location, int) or location.startswith("/dev/"):
        return LiveSource(camera_id, location)
    scheme = urlsplit(location).scheme.lower()
    if scheme in LIVE_SCHEMES:
        return LiveSource(camera_id, location)
    path = Path(unquote(urlsplit(location).path)) if scheme == "file" else Path(location).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return FileSource(camera_id, path, realtime=realtime)
