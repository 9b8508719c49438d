"""Whether this machine's container engine can run the build's steps, and how.

podman's default OCI runtime on Debian 12 and Ubuntu, crun, refuses to start any container where
the cgroups are in hybrid mode (cgroup v1 controllers with a cgroup v2 mount beside them): "cgroups
in hybrid mode not supported". runc runs there. So on such a machine a build uses runc when it is
installed, and otherwise runs its steps with chroot isolation, which needs no cgroups; the image is
the same either way."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MOUNTS = Path("/proc/self/mounts")


def cgroups_hybrid(mounts: str | None = None) -> bool:
    """Whether /sys/fs/cgroup holds cgroup v1 controllers and a cgroup v2 mount at once."""
    text = MOUNTS.read_text() if mounts is None else mounts
    points = {(fields[1], fields[2]) for fields in (line.split() for line in text.splitlines()) if len(fields) > 2}
    unified = ("/sys/fs/cgroup", "cgroup2") in points
    v2_beside = any(kind == "cgroup2" and point.startswith("/sys/fs/cgroup/") for point, kind in points)
    v1 = any(kind == "cgroup" for _, kind in points)
    return not unified and v1 and v2_beside


def podman_runtime(engine: str) -> str:
    """The name of the OCI runtime podman uses by default ('' when it cannot tell)."""
    done = subprocess.run([engine, "info", "--format", "{{.Host.OCIRuntime.Name}}"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    return done.stdout.strip()


@dataclass(frozen=True)
class EngineOptions:
    """How to call the engine: `ENGINE *global_options build *build_options ...`."""

    global_options: tuple[str, ...] = ()
    build_options: tuple[str, ...] = ()
    note: str | None = None  # what was chosen and why, for the user


def engine_options(engine: str) -> EngineOptions:
    """Plain options where the engine's own runtime works; runc, or chroot isolation for the
    build's steps, where podman's crun cannot run containers (hybrid cgroups)."""
    if Path(engine).name != "podman" or not cgroups_hybrid() or podman_runtime(engine) != "crun":
        return EngineOptions()
    if shutil.which("runc"):
        return EngineOptions(("--runtime", "runc"), (), "cgroups are in hybrid mode, where crun cannot run "
                             "containers: using runc")  # fmt: skip
    return EngineOptions(
        (),
        ("--isolation", "chroot"),
        (
            "cgroups are in hybrid mode, where podman's runtime crun cannot run containers, and runc is not installed: "
            "the build runs its steps with chroot isolation (the image is the same). To run images on this machine, "
            "install runc (apt-get install runc) or boot with systemd.unified_cgroup_hierarchy=1"
        ),
    )
