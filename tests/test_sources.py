"""Frame sources against real files and real stream servers on loopback."""

from __future__ import annotations

import functools
import http.server
import random
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.runtime.sources import (
    Backoff,
    FileSource,
    LiveSource,
    RateCap,
    SourceError,
    open_source,
    redact_url,
)
from tests.conftest import PETS_VIDEO, TUD_VIDEO
from tests.servers import MjpegServer, RtspServer, SilentServer, free_port, wait_until

FAST_RETRY = Backoff(initial_s=0.2, maximum_s=1.0)


@pytest.fixture
def mjpeg(data: Path) -> Iterator[MjpegServer]:
    server = MjpegServer(data / PETS_VIDEO).start()
    yield server
    server.kill()


@pytest.fixture
def live_source() -> Iterator[list[LiveSource]]:
    started: list[LiveSource] = []
    yield started
    for source in started:
        source.stop()


def start(started: list[LiveSource], location: str | int, **options: object) -> LiveSource:
    source = LiveSource("cam", location, **options)  # type: ignore[arg-type]
    source.start()
    started.append(source)
    return source


def test_file_gives_every_frame_in_order_stamped_with_video_time(data: Path) -> None:
    with FileSource("pets", data / PETS_VIDEO, realtime=False) as source:
        assert isinstance(source, FileSource)
        frames = []
        while (frame := source.read()) is not None:
            frames.append((frame.index, frame.timestamp, frame.image.shape))
        assert source.status.finished
    assert len(frames) == 795
    assert [f[0] for f in frames] == list(range(795))
    assert frames[10][1] == pytest.approx(10 / source.fps)
    assert frames[0][2] == (576, 768, 3)


def test_file_at_its_own_rate_is_paced_by_video_time(data: Path) -> None:
    with FileSource("pets", data / PETS_VIDEO, realtime=True) as source:
        assert isinstance(source, FileSource)
        started = time.monotonic()
        for _ in range(6):
            assert source.read() is not None
        assert time.monotonic() - started >= 5 / source.fps * 0.9


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"camera cam: video file .*absent.avi does not exist"):
        FileSource("cam", tmp_path / "absent.avi", realtime=False).start()


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(bytes(range(256)) * 4000)
    source = FileSource("cam", corrupt, realtime=False)
    with pytest.raises(SourceError, match=r"camera cam: cannot (open|decode any frame of) .*corrupt.avi"):
        source.start()
        source.read()
    assert source.status.error is not None
    assert not source.status.online


def test_a_truncated_file_ends_early_and_says_so(data: Path, tmp_path: Path) -> None:
    """Its frames are analysed; its end is not taken for the file's (once it ended silently)."""
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes((data / PETS_VIDEO).read_bytes()[:1_500_000])
    with FileSource("cam", truncated, realtime=False) as source:
        count = 0
        while source.read() is not None:
            count += 1
        status = source.status
    assert 0 < count < 795 and status.finished
    assert status.error is not None and f"is cut short: it ended at frame {count} of 795" in status.error


def test_a_file_overwritten_while_read_ends_and_says_so(data: Path, tmp_path: Path) -> None:
    video = tmp_path / "video.avi"
    shutil.copyfile(data / PETS_VIDEO, video)
    with FileSource("cam", video, realtime=False) as source:
        assert source.read() is not None
        with video.open("r+b") as stream:  # in place, as a careless copy would
            stream.truncate(400_000)
            stream.seek(200_000)
            stream.write(bytes(range(256)) * 100)
        count = 1
        while source.read() is not None:
            count += 1
        status = source.status
    assert count < 795 and status.finished, count
    assert status.error is not None and "changed while it was read" in status.error, status.error


def _black_png(path: Path, width: int, height: int) -> None:
    """A grey-scale PNG written row by row: a 12000x12000 one costs 140 KB and no memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(9), bytes(width + 1)
    rows = [packer.compress(row) for _ in range(height)] + [packer.flush()]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(rows)) + chunk(b"IEND", b"")
    )


def test_frames_over_the_pixel_limit_are_refused_before_they_are_decoded(tmp_path: Path) -> None:
    """A 12000x12000 image as a camera's source once took a worker to 1.4 GB; now it is refused
    from its header (the child's own peak memory, VmHWM, is measured)."""
    image = tmp_path / "huge.png"
    _black_png(image, 12000, 12000)
    program = ("import re, sys; from pathlib import Path\n"
               "from appliance.runtime.sources import FileSource, SourceError\n"
               "try:\n    FileSource('cam', Path(sys.argv[1]), realtime=False).start()\n"
               "except SourceError as error:\n    print(error)\n"
               "print('peak KiB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", program, str(image)], capture_output=True, text=True, timeout=120)
    assert "frames of 12000x12000 (144 MP) are over the 16.8 MP" in result.stdout, result.stdout + result.stderr
    assert int(result.stdout.split("peak KiB")[1]) < 400 * 1024, result.stdout


def test_a_whole_file_ends_without_a_problem(data: Path) -> None:
    with FileSource("cam", data / PETS_VIDEO, realtime=False, fps_cap=5) as source:
        while source.read() is not None:
            pass
        assert source.status.finished and source.status.error is None


def test_rtsp_stream_from_a_real_server(data: Path, live_source: list[LiveSource]) -> None:
    server = RtspServer(data / PETS_VIDEO)
    try:
        source = start(live_source, server.url)
        frame = source.read(timeout=15)
        assert frame is not None, source.status.error
        assert frame.image.shape == (576, 768, 3)
        assert abs(frame.timestamp - time.time()) < 5  # live sources carry wall-clock time
        assert source.status.online
    finally:
        server.kill()


def test_http_mjpeg_keeps_only_the_newest_frame_and_counts_the_rest(
    mjpeg: MjpegServer, live_source: list[LiveSource]
) -> None:
    source = start(live_source, mjpeg.url)
    first = source.read(timeout=10)
    assert first is not None, source.status.error
    time.sleep(1.0)  # a slow consumer: about 10 frames arrive meanwhile
    newest = source.read(timeout=10)
    assert newest is not None
    assert newest.index > first.index + 1
    assert source.status.dropped >= newest.index - first.index - 2


def test_fps_cap_keeps_its_rate_on_a_jittery_stream() -> None:
    """Frames of a 25 fps stream arriving 40 ms apart, give or take 8 ms: a cap of 5 keeps 5 a
    second (not the 4.3 of "200 ms since the last one kept"), 7 keeps 7, and a cap above the
    stream's rate keeps every frame."""
    jitter = random.Random(7)
    arrivals = [i / 25 + jitter.uniform(-0.008, 0.008) for i in range(25 * 60)]
    for fps_cap, expected in ((5, 300), (7, 420), (30, len(arrivals))):
        cap = RateCap(1 / fps_cap)
        assert abs(sum(cap.keep(t) for t in arrivals) - expected) <= 1, fps_cap


def test_fps_cap_on_a_live_25_fps_stream(data: Path, live_source: list[LiveSource]) -> None:
    server = MjpegServer(data / TUD_VIDEO).start()
    try:
        source = start(live_source, server.url, fps_cap=5)
        assert source.read(timeout=15) is not None, source.status.error
        time.sleep(1.0)
        status, started = source.status, time.monotonic()
        time.sleep(8.0)
        later, seconds = source.status, time.monotonic() - started
        kept = (later.frames + later.dropped) - (status.frames + status.dropped)
        assert 4.5 <= kept / seconds <= 5.3, (kept, seconds)  # slack for a busy machine
        assert later.skipped - status.skipped >= 3 * kept  # the other 20 a second: grabbed, not converted
        decode = [frame.decode_seconds for frame in (source.read(timeout=5) for _ in range(10)) if frame]
        assert statistics.median(decode) < 0.03, decode  # CPU time, not the 40 ms between the camera's frames
    finally:
        server.kill()


def test_hls_playlist_over_http(data: Path, tmp_path: Path, live_source: list[LiveSource]) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(data / PETS_VIDEO), "-t", "3", "-c:v", "mpeg2video",
         "-q:v", "4", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", str(tmp_path / "live.m3u8")],
        check=True, timeout=60,
    )  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = start(live_source, f"http://127.0.0.1:{server.server_address[1]}/live.m3u8")
        frame = source.read(timeout=15)
        assert frame is not None, source.status.error
        assert frame.image.shape == (576, 768, 3)
    finally:
        server.shutdown()
        server.server_close()


def test_stream_that_dies_mid_stream_is_reconnected(mjpeg: MjpegServer, live_source: list[LiveSource]) -> None:
    source = start(live_source, mjpeg.url, read_timeout_s=2.0, backoff=FAST_RETRY)
    assert source.read(timeout=10) is not None
    mjpeg.kill()
    assert wait_until(lambda: not source.status.online, timeout=10)
    assert source.status.error is not None
    mjpeg.start(wait=False)
    assert wait_until(lambda: source.status.reconnects == 1, timeout=15), source.status
    assert source.read(timeout=10) is not None
    assert source.status.online


def test_host_that_never_answers_goes_offline_within_the_open_timeout(
    live_source: list[LiveSource],
) -> None:
    silent = SilentServer()
    try:
        started = time.monotonic()
        source = start(
            live_source,
            f"http://127.0.0.1:{silent.port}/video.mjpg",
            open_timeout_s=1.5,
            backoff=FAST_RETRY,
        )
        assert wait_until(lambda: source.status.error is not None, timeout=10)
        assert time.monotonic() - started < 8
        assert "accepts connections but sends no video" in str(source.status.error)
        assert source.read(timeout=0.2) is None
        stopping = time.monotonic()
        source.stop()
        assert time.monotonic() - stopping < 10
    finally:
        silent.close()


def test_refused_connection_says_so(live_source: list[LiveSource]) -> None:
    port = free_port()
    source = start(
        live_source,
        f"rtsp://user:secret@127.0.0.1:{port}/stream",
        open_timeout_s=2.0,
        backoff=FAST_RETRY,
    )
    assert wait_until(lambda: source.status.error is not None, timeout=10)
    error = str(source.status.error)
    assert f"cannot connect to 127.0.0.1:{port} (Connection refused)" in error
    assert "secret" not in error


def test_missing_camera_device_says_so(live_source: list[LiveSource]) -> None:
    source = start(live_source, "/dev/video99", backoff=FAST_RETRY)
    assert wait_until(lambda: source.status.error is not None, timeout=10)
    assert "cannot open /dev/video99: no such device" in str(source.status.error)


def test_a_dead_camera_does_not_stop_another(mjpeg: MjpegServer, live_source: list[LiveSource]) -> None:
    dead = start(live_source, f"rtsp://127.0.0.1:{free_port()}/x", backoff=FAST_RETRY)
    alive = start(live_source, mjpeg.url)
    frames = [alive.read(timeout=10) for _ in range(5)]
    assert all(f is not None for f in frames)
    assert not dead.status.online


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(initial_s=1.0, maximum_s=8.0, jitter=0.5)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("rtsp://cam/stream", LiveSource),
        ("https://cam/live.m3u8", LiveSource),
        ("/dev/video0", LiveSource),
        (0, LiveSource),
        ("/var/lib/appliance/media/vtest.avi", FileSource),
        ("file:///var/lib/appliance/media/vtest%20copy.avi", FileSource),
        ("media/vtest.avi", FileSource),
    ],
)
def test_open_source_picks_the_kind_of_source(location: str | int, kind: type) -> None:
    assert isinstance(open_source("cam", location), kind)


def test_file_urls_resolve() -> None:
    url_source = open_source("cam", "file:///media/a%20b.avi")
    assert isinstance(url_source, FileSource) and url_source.path == Path("/media/a b.avi")


def test_passwords_never_appear_in_source_names() -> None:
    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/s") == "rtsp://admin:***@10.0.0.5:554/s"
    assert redact_url("rtsp://10.0.0.5/s") == "rtsp://10.0.0.5/s"
