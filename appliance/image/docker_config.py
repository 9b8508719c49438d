"""podman's Docker-format image config (the format that keeps a HEALTHCHECK) names the build
container: its id (`container`) and its hostname (`Hostname`), new on every build. Everything else
in the image is the same from build to build, so the image is saved, those two fields are
emptied, and it is loaded again under its name: two builds then have the same id and digest.

Written by hand because no tool on a Debian machine edits an image's config (skopeo copies it
as it is); the layers are copied byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

SAVE_TIMEOUT_S = 900


def drop_build_container(engine: str, tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="appliance-image-") as folder:
        saved, rewritten = Path(folder) / "saved.tar", Path(folder) / "image.tar"
        _run([engine, "save", "--format", "docker-archive", "-o", str(saved), tag])
        old_id = _rewrite(saved, rewritten)
        _run([engine, "load", "--quiet", "-i", str(rewritten)])
        subprocess.run([engine, "rmi", old_id], capture_output=True, timeout=SAVE_TIMEOUT_S)  # kept if still used


def _rewrite(saved: Path, target: Path) -> str:
    """Write `saved` to `target` with its config cleaned; return the old image id."""
    with tarfile.open(saved) as source, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
        [manifest] = json.loads(_read(source, "manifest.json"))
        config = json.loads(_read(source, manifest["Config"]))
        cleaned = json.dumps(_cleaned(config), separators=(",", ":"), sort_keys=True).encode()
        name = f"{hashlib.sha256(cleaned).hexdigest()}.json"
        for layer in manifest["Layers"]:
            member = source.getmember(layer)
            out.addfile(_entry(layer, member.size), source.extractfile(member))
        out.addfile(_entry(name, len(cleaned)), io.BytesIO(cleaned))
        listing = json.dumps([{**manifest, "Config": name}], separators=(",", ":")).encode()
        out.addfile(_entry("manifest.json", len(listing)), io.BytesIO(listing))
    return str(manifest["Config"]).removesuffix(".json")


def _cleaned(config: dict[str, Any]) -> dict[str, Any]:
    config = {key: value for key, value in config.items() if key != "container"}
    for section in ("config", "container_config"):
        if isinstance(config.get(section), dict):
            config[section] = {**config[section], "Hostname": ""}
    return config


def _read(source: tarfile.TarFile, name: str) -> bytes:
    stream = source.extractfile(name)
    if stream is None:
        raise ValueError(f"{name} is not a file in the saved image")
    return stream.read()


def _entry(name: str, size: int) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.size, entry.mode, entry.mtime = size, 0o444, 0
    return entry


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=SAVE_TIMEOUT_S)
