"""Shared fixtures: the repository layout, the shared test data and the real CLI."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import pytest

from appliance.runtime.types import Image

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
SHIPPED_PROFILES = sorted(PROFILES.glob("*.yaml"))


def data_dir() -> Path:
    """The shared test-data kit: $APPLIANCE_TEST_DATA, default ../shared/data beside the repo."""
    return Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data() -> Path:
    """The test-data kit; tests that need it are skipped, saying why, when it is absent."""
    folder = data_dir()
    if not (folder / "MANIFEST.md").is_file():
        pytest.skip(f"test-data kit not found at {folder} (set APPLIANCE_TEST_DATA)")
    return folder


PETS_VIDEO = "sequences/PETS09-S2L1/vtest.avi"
PETS_TRUTH = "sequences/PETS09-S2L1/gt/gt.txt"
TUD_VIDEO = "sequences/TUD-Stadtmitte/TUD-Stadtmitte.mp4"  # 25 fps


def read_frames(video: Path, numbers: Iterable[int]) -> dict[int, Image]:
    """The frames with these 1-based numbers (MOT numbering), decoded in one pass."""
    wanted = set(numbers)
    frames: dict[int, Image] = {}
    capture = cv2.VideoCapture(str(video))
    number = 0
    while len(frames) < len(wanted):
        ok, image = capture.read()
        if not ok:
            break
        number += 1
        if number in wanted:
            frames[number] = image
    capture.release()
    return frames


WriteFiles = Callable[..., Path]


@pytest.fixture
def write_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteFiles:
    """Write dedented files into a temporary directory that becomes the working directory;
    return the path of the first one, relative, so messages name it as a user would see it."""
    monkeypatch.chdir(tmp_path)

    def write(**files: str | bytes) -> Path:
        for name, content in files.items():
            target = tmp_path / name.replace("__", ".")
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return Path(next(iter(files)).replace("__", "."))

    return write


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `appliance` command in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        timeout=60,
        check=False,
    )


ORPHAN_WAIT_S = 20.0


def _descendants_and_orphans() -> set[int]:
    """Processes started from this test session: they carry its marker in their environment."""
    marker = f"APPLIANCE_TEST_SESSION={os.environ['APPLIANCE_TEST_SESSION']}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and not _is_zombie(entry):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def _started_by_the_test(before: set[int]) -> set[int]:
    return {pid for pid in _descendants_and_orphans() - before if not _ancestors(pid) & before}


def _ancestors(pid: int) -> set[int]:
    found = set()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        found.add(pid)
    return found


def _is_zombie(entry: Path) -> bool:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ["APPLIANCE_TEST_SESSION"] = f"{os.getpid()}-{time.time_ns()}"


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every process a test starts (and everything those start) is gone when it ends. Children
    that a longer-lived process (a module's appliance) starts meanwhile are that process's own."""
    before = _descendants_and_orphans()
    yield
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while (left := _started_by_the_test(before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, "processes left behind: " + "; ".join(f"{pid}: {_command(pid)}" for pid in left)
