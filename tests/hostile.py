"""The real `appliance` command run on hostile input, bounded: under a memory limit and a
timeout, in a child process, so a hang or a memory blow-up fails a test instead of the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

MEMORY_LIMIT_BYTES = 1024**3
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def bounded_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S) -> Outcome:
    """Run `appliance ARGS` in `cwd` with at most 1 GiB of address space and `timeout` seconds."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, preexec_fn=_limit_memory,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        returncode = None
    return Outcome(returncode, stdout, stderr, time.monotonic() - started)
