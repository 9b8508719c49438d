"""What an image was built from: the appliance's version, the git revision, the profile's and the
models' sha256. Written into the image at build time; the runtime shows it in `/metrics`
(`appliance_build_info`) and `/api/v1/version`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance import __version__
from appliance.models import sha256_of

if TYPE_CHECKING:
    from appliance.config import LoadedProfile

ENV = "APPLIANCE_BUILD_INFO"  # the file's path, set in the image
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str  # git commit, "-dirty" appended when the tree had changes; "unknown" outside git
    source_date_epoch: int  # the commit's time: every timestamp in the image
    profile: str  # the profile's name
    profile_sha256: str  # of the profile files, in order
    models: dict[str, str] = field(default_factory=dict)  # model file name -> sha256

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def build_info(loaded: LoadedProfile, source: Path) -> BuildInfo:
    revision, epoch = git_revision(source)
    digest = hashlib.sha256()
    for path in loaded.files:
        digest.update(path.read_bytes())
    models = {
        Path(str(m.path)).name: m.sha256 or _sha256(Path(str(m.path))) for m in loaded.profile.model_files().values()
    }
    return BuildInfo(__version__, revision, epoch, loaded.name, digest.hexdigest(), models)


def git_revision(source: Path) -> tuple[str, int]:
    """(revision, SOURCE_DATE_EPOCH) of the checkout at `source`; SOURCE_DATE_EPOCH from the
    environment wins, as reproducible-builds.org asks."""
    try:
        revision = _git(source, "rev-parse", "HEAD")
        epoch = int(_git(source, "log", "-1", "--format=%ct"))
        if _git(source, "status", "--porcelain", "--untracked-files=no"):
            revision += "-dirty"
    except (OSError, subprocess.CalledProcessError, ValueError):
        revision, epoch = "unknown", 0
    return revision, int(os.environ.get("SOURCE_DATE_EPOCH", epoch))


def load_build_info() -> dict[str, Any] | None:
    """The running image's build info, or None outside a built image (or when unreadable)."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        with Path(path).open("rb") as stream:
            data = json.loads(stream.read(MAX_BYTES))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _git(source: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()  # fmt: skip


def _sha256(path: Path) -> str:
    try:
        return sha256_of(path)
    except OSError:
        return "absent at build time"
