"""The OCI build context for one profile: the Containerfile, the locked requirements, the
appliance's source, the profile with every file it extends and the models it loads (kept at the
same relative places, so relative paths still hold), and the build info. Nothing else: no
secret file, no cache, nothing from the working tree that is not part of the package."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.image.buildinfo import BuildInfo
from appliance.image.containerfile import SITE, containerfile
from appliance.image.hardware import ImageTarget

SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "appliance", "schemas")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class ContextError(ValueError):
    """The profile cannot be put into an image as it is."""


def write_context(
    folder: Path, source: Path, loaded: LoadedProfile, target: ImageTarget, info: BuildInfo, base: str
) -> Path:
    """Fill `folder` (emptied first) and return the profile's path inside the image."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in SOURCE_FILES:
        _copy(source / name, folder / "source" / name)
    requirements = source / "oci" / "requirements"
    shutil.copyfile(requirements / f"{target.requirements}.txt", folder / "requirements.txt")
    shutil.copyfile(requirements / "build.txt", folder / "build-requirements.txt")
    files = site_files(loaded)
    root = Path(os.path.commonpath([path.parent for path in files]))
    if root == Path("/"):
        raise ContextError(f"the profile's files and models share no folder but /: {', '.join(map(str, files))}")
    for path in files:
        _copy(path, folder / "site" / path.relative_to(root))
    profile = Path(SITE) / loaded.path.resolve().relative_to(root)
    (folder / "build-info.json").write_text(info.to_json())
    (folder / "Containerfile").write_text(containerfile(loaded, target, profile, base))
    return profile


def site_files(loaded: LoadedProfile) -> list[Path]:
    """The profile, the files it extends, and the detector's model with the files beside it that
    share its name (an OpenVINO .xml has its .bin) and the licences there. A model that is not on
    this machine (one `appliance models fetch` puts on the device) is left out."""
    files = [path.resolve() for path in loaded.files]
    model = loaded.profile.detector.model.path
    if model and Path(model).is_file():
        path = Path(model)
        files += sorted(p for p in path.parent.iterdir() if p.is_file() and (p.stem == path.stem or
                        p.name.upper().startswith("LICENSE")))  # fmt: skip
        files += [p for parent in path.parents[:3] for p in parent.glob("LICENSE*") if p.is_file()]
    return sorted(set(files))


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=SKIPPED)
    else:
        shutil.copyfile(source, target)
