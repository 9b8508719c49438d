"""The Debian base image, made here with debootstrap from Debian's packages, and kept: it is
made again only when what goes into it (suite, architecture, packages, mirror) changes.

The root file system becomes an image through `podman build --timestamp 0` of `FROM scratch` and
`ADD rootfs.tar /`, so the base image's id depends only on the files in it. The files debootstrap
leaves that differ from run to run (logs, caches, the machine id) are removed first. A mirror
pinned to a date (snapshot.debian.org) makes the base the same on every machine."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from appliance.image.hardware import DEBIAN_SUITE, ImageTarget

log = logging.getLogger(__name__)
LOCAL_BASE = "localhost/appliance-base"  # tagged with the suite, the architecture and the recipe's key
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
VOLATILE = ("var/log", "var/cache/apt", "var/lib/apt/lists", "var/cache/ldconfig", "var/cache/debconf/*-old",
            "var/lib/dpkg/*-old", "etc/machine-id", "etc/hostname", "etc/resolv.conf", "root/.cache")  # fmt: skip
DEBOOTSTRAP_TIMEOUT_S = 1800


class BaseError(RuntimeError):
    """The base image could not be made."""


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "appliance" / "base"


def base_key(target: ImageTarget, mirror: str) -> str:
    recipe = {"suite": DEBIAN_SUITE, "arch": target.debian_arch, "packages": PACKAGES, "mirror": mirror,
              "volatile": VOLATILE, "format": 1}  # fmt: skip
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def base_image(target: ImageTarget, mirror: str = DEFAULT_MIRROR) -> str:
    """The name of the local base image for `target` (made by `ensure_base`)."""
    return f"{LOCAL_BASE}:{DEBIAN_SUITE}-{target.debian_arch}-{base_key(target, mirror)}"


def ensure_base(target: ImageTarget, engine: str, mirror: str, say: Callable[[str], None]) -> str:
    """The local base image for `target`, made (or imported from the cached root file system)
    when it is not there yet; `say` tells what takes long."""
    key = base_key(target, mirror)
    image = base_image(target, mirror)
    if subprocess.run([engine, "image", "exists", image], capture_output=True).returncode == 0:
        log.info("base image %s: already here", image)
        return image
    rootfs = cache_folder() / f"{key}.tar"
    if not rootfs.is_file():
        say(f"making the Debian base: debootstrap {DEBIAN_SUITE} {target.debian_arch} from {mirror} (once)")
        _debootstrap(target, mirror, rootfs)
    say(f"base image {image}: made from {rootfs}")
    with tempfile.TemporaryDirectory(prefix="appliance-base-") as folder:
        shutil.copyfile(rootfs, Path(folder) / "rootfs.tar")
        (Path(folder) / "Containerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["/bin/bash"]\n')
        _run([engine, "build", "--quiet", "--timestamp", "0", "--platform", target.platform, "-t", image, folder])
    return image


def _debootstrap(target: ImageTarget, mirror: str, rootfs_tar: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise BaseError("debootstrap is not installed (apt-get install debootstrap), and no --base image was given")
    if os.geteuid() != 0:
        raise BaseError("debootstrap needs root to make the Debian base; run as root, or give a --base image")
    rootfs_tar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="appliance-debootstrap-") as folder:
        root = Path(folder) / "rootfs"
        command = ["debootstrap", "--variant=minbase", f"--arch={target.debian_arch}",
                   f"--include={','.join(PACKAGES)}", DEBIAN_SUITE, str(root), mirror]  # fmt: skip
        _run(command, timeout=DEBOOTSTRAP_TIMEOUT_S)
        for pattern in VOLATILE:
            for path in root.glob(pattern):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        partial = rootfs_tar.with_suffix(".partial")
        _run(["tar", "--sort=name", "--numeric-owner", "--mtime=@0", "--clamp-mtime", "-C", str(root), "-cf",
              str(partial), "."])  # fmt: skip
        partial.replace(rootfs_tar)


def _run(command: list[str], timeout: float = 600) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BaseError(f"{command[0]} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise BaseError(f"{' '.join(command[:2])} failed: {done.stderr.strip()[-2000:]}")
