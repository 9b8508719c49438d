"""The A/B slots: two folders, and a `current` symlink naming the committed one, switched by
renaming a new link over it (atomic on POSIX). No link: the profile as the device was set up."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from appliance.config.yamlio import write_atomically
from appliance.ota.bundle import Manifest, parse_manifest

SLOT_NAMES = ("a", "b")
STATE_FILE = "versions.json"


class Slots:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.link = root / "current"
        self.rollback_profile = root / "rollback" / "profile.yaml"

    def current(self) -> str | None:
        try:
            target = self.link.readlink()
        except FileNotFoundError:
            return None
        name = Path(target).name
        return name if name in SLOT_NAMES else None

    def inactive(self) -> str:
        return "b" if self.current() == "a" else "a"

    def path(self, name: str) -> Path:
        return self.root / "slots" / name

    def manifest(self, name: str | None) -> Manifest | None:
        if name is None:
            return None
        try:
            return parse_manifest((self.path(name) / "manifest.json").read_bytes())
        except FileNotFoundError:
            return None

    def installed_version(self) -> int:
        manifest = self.manifest(self.current())
        return manifest.version if manifest else 0

    def highest_tried(self) -> int:
        try:
            return int(json.loads((self.root / STATE_FILE).read_text())["highest_tried"])
        except FileNotFoundError:
            return 0

    def mark_tried(self, version: int) -> None:
        write_atomically(self.root / STATE_FILE, json.dumps({"highest_tried": max(version, self.highest_tried())}))

    def empty(self, name: str) -> Path:
        folder = self.path(name)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def switch(self, name: str | None) -> None:
        if name is None:
            self.link.unlink(missing_ok=True)
        else:
            temporary = self.root / ".current.new"
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(Path("slots") / name)
            temporary.replace(self.link)
        fsync_folder(self.root)


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with path.open("rb") as stream:
                os.fsync(stream.fileno())
    fsync_folder(folder)
