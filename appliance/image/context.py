"""The OCI build context for one profile: the Containerfile, the locked requirements, the
appliance's source, the profile with every file it extends and the models it loads (kept at the
same relative places, so relative paths still hold), and the build info. Nothing else: no
secret file, no cache, nothing from the working tree that is not part of the package.

Files of the source tree (the shipped profiles and models) go under `site/` at their places in
it, so the image's shipped profiles are `site/profiles/`, which the image names in
APPLIANCE_PROFILES; a site profile kept elsewhere, with the files beside it, goes under
`site/local/`. The context is self-contained: the profile is validated inside it, as the build
will, before the context is kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from appliance.buildinfo import BuildInfo
from appliance.config import LoadedProfile
from appliance.image.containerfile import PROFILES, SITE, containerfile
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
    places = image_places(site_files(loaded), source.resolve())
    for path, place in places.items():
        _copy(path, folder / "site" / place)
    profile = Path(SITE) / places[loaded.path.resolve()]
    (folder / "build-info.json").write_text(info.to_json())
    (folder / "Containerfile").write_text(containerfile(loaded, target, profile, base))
    _check_self_contained(folder, profile)
    return profile


def image_places(files: list[Path], source: Path) -> dict[Path, Path]:
    """Where each file goes under `site/`: its place in the source tree, or under `local/` at
    its place below the folder the other files share."""
    places = {path: path.relative_to(source) for path in files if path.is_relative_to(source)}
    others = [path for path in files if path not in places]
    if others:
        root = Path(os.path.commonpath([path.parent for path in others]))
        if root == Path("/"):
            raise ContextError(f"the profile's files and models share no folder but /: {', '.join(map(str, others))}")
        places |= {path: Path("local") / path.relative_to(root) for path in others}
    return places


def _check_self_contained(folder: Path, profile: Path) -> None:
    """Validate the profile inside the context, as the Containerfile's `appliance validate` will."""
    inside = folder / "site" / profile.relative_to(SITE)
    environment = {**os.environ, "APPLIANCE_PROFILES": str(folder / "site" / PROFILES)}
    done = subprocess.run([sys.executable, "-m", "appliance", "validate", str(inside)], capture_output=True,
                          text=True, env=environment, timeout=120, check=False)  # fmt: skip
    if done.returncode != 0:
        problem = (done.stderr or done.stdout).strip().replace(str(folder / "site"), SITE)
        raise ContextError(f"the profile would not validate inside the image: {problem}")


def site_files(loaded: LoadedProfile) -> list[Path]:
    """The profile, the files it extends, and each model it loads (the detector's, the face
    detector's) with the files beside it that share its name (an OpenVINO .xml has its .bin) and
    the licences there. A model that is not on this machine (one `appliance models fetch` puts
    on the device) is left out."""
    files = [path.resolve() for path in loaded.files]
    for path in (Path(str(model.path)) for model in loaded.profile.model_files().values()):
        if path.is_file():
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
