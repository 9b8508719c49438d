"""The appliance as a real process for runtime tests: start it, read its log and metrics, signal it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

from tests.servers import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]


class RunningAppliance:
    def __init__(
        self,
        folder: Path,
        profile: str,
        *,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        program: tuple[str, ...] | None = None,
        log_level: str = "info",
        wrapper: tuple[str, ...] = (),
    ) -> None:
        """Run `appliance run --profile` (or `program PROFILE`, a module run with -m) on `profile`,
        through `wrapper` (a command that ends by exec'ing its arguments) when given."""
        self.folder = folder
        self.metrics_port = free_port()
        self.api_port = free_port()
        self.profile_path = folder / "profile.yaml"
        self.data_dir = folder / "data"
        self.write_profile(profile)
        self.log_path = folder / "appliance.log"
        self.log_file = self.log_path.open("w")
        command = (
            (*program, str(self.profile_path))
            if program
            else ("appliance", "--log-level", log_level, "run", "--profile", str(self.profile_path), *extra_args)
        )
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", *command],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    def write_profile(self, profile: str) -> None:
        """Write the profile, filling in @METRICS_PORT@, @API_PORT@ and @DATA_DIR@, atomically (as an
        editor would). A profile without an `api` section gets the API on its own free port, so
        that appliances of parallel tests never meet on the default one."""
        text = textwrap.dedent(profile).replace("@METRICS_PORT@", str(self.metrics_port))
        text = text.replace("@DATA_DIR@", str(self.data_dir)).replace("@API_PORT@", str(self.api_port))
        if not re.search(r"^api:", text, flags=re.MULTILINE):
            text = text.rstrip("\n") + f'\napi: {{listen: "127.0.0.1:{self.api_port}"}}\n'
        temporary = self.profile_path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.profile_path)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def worker_pids(self) -> dict[str, int]:
        """The latest worker pid of each camera, from the supervisor's log."""
        return {camera: int(pid) for camera, pid in re.findall(r"camera (\S+): worker started \(pid (\d+)\)", self.log)}

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def wait_for_metric(self, name: str, minimum: float, timeout: float = 60) -> bool:
        return wait_until(lambda: self.metric(name) >= minimum, timeout, interval=0.25)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log_file.close()


def frames(camera: str) -> str:
    return f'appliance_frames_processed_total{{camera="{camera}"}}'


def wait_for_exit(pid: int, timeout: float = 10) -> bool:
    """Whether the process ends within `timeout`; an orphan that exited but that nobody reaped
    yet (a zombie, where PID 1 is slow to reap) counts as ended."""

    def gone() -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")

    return wait_until(gone, timeout)


__all__ = ["RunningAppliance", "frames", "wait_for_exit"]
