"""Model files: where they are, whether they are the ones the profile pinned."""

from __future__ import annotations

import hashlib
from pathlib import Path


class ModelError(Exception):
    """A model file that is missing or not the one the profile expects."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path_for(path: str | None, profile_dir: Path | None) -> Path | None:
    """A path from a profile (model, data folder); relative ones are relative to the profile's folder."""
    if path is None:
        return None
    model = Path(path).expanduser()
    return model if model.is_absolute() or profile_dir is None else profile_dir / model


def verify_model(path: Path, expected_sha256: str | None) -> None:
    """Refuse a missing model file, or one whose sha256 differs from the pinned one."""
    if not path.is_file():
        raise ModelError(
            f"model file {path} does not exist; copy it there or fetch a known model with "
            "'appliance models fetch NAME' (see 'appliance models list')"
        )
    if expected_sha256 is None:
        return
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ModelError(
            f"model file {path} has sha256 {actual}, but detector.model.sha256 is "
            f"{expected_sha256}: refusing to start; replace the file or correct the profile"
        )
