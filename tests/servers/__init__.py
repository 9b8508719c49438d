"""Real stream servers on loopback for the source tests: ffmpeg's HTTP MJPEG listener and
GStreamer's RTSP server, both fed from the test video, started and killed as processes."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

RTSP_SCRIPT = Path(__file__).with_name("rtsp_server.py")
DEBIAN_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def listening(port: int) -> bool:
    """Whether a socket listens on `port`, read from /proc without connecting (ffmpeg's
    listener serves only the first client that connects)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    if not wait_until(lambda: listening(port), timeout):
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class MjpegServer:
    """ffmpeg serving the video, looped at its own rate, as multipart JPEG over HTTP."""

    def __init__(self, video: Path) -> None:
        self.video = video
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> MjpegServer:
        """Start serving; `wait=False` on a restart, where a reconnecting client may take the
        single connection ffmpeg accepts before anyone sees the port listening."""
        command = [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(self.video),
            "-f",
            "mpjpeg",
            "-q:v",
            "5",
            "-listen",
            "1",
            self.url,
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        if wait:
            wait_for_port(self.port)
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class RtspServer:
    """GStreamer's RTSP server (under Debian's Python and its GObject bindings)."""

    def __init__(self, video: Path, *, h264: bool = False) -> None:
        """`h264`: an MP4's H.264 served as it is, each client from the file's start."""
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/live"
        self.process = subprocess.Popen(
            [DEBIAN_PYTHON, str(RTSP_SCRIPT), str(video), str(self.port), *(["h264"] if h264 else [])],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().decode().strip()
        if ready != "ready":
            raise RuntimeError(
                f"the RTSP server did not start (said {ready!r}); "
                "are python3-gi and gir1.2-gst-rtsp-server-1.0 installed?"
            )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class SilentServer:
    """Accepts TCP connections and never sends a byte: a camera that hangs."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            while True:
                connection, _ = self.socket.accept()
                self.connections.append(connection)
        except OSError:
            return

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


__all__ = ["MjpegServer", "RtspServer", "SilentServer", "free_port", "wait_until"]
