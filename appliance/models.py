"""Model files: whether a file is the one the profile pinned, and the known permissively licensed
models that `appliance models fetch` downloads from their official location (or a mirror) into
the model cache, verifying the digest the publisher pinned."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.files import FileReadError, read_regular_file, regular_file_problem

log = logging.getLogger(__name__)
DEFAULT_CACHE = Path(os.environ.get("APPLIANCE_MODEL_CACHE", "/var/lib/appliance/models"))
TIMEOUT_S = 30
OMZ = "https://storage.openvinotoolkit.org/repositories/open_model_zoo"


class ModelError(Exception):
    """A model file that is missing or not the one the profile expects."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model(path: Path, expected_sha256: str | None, key: str = "detector.model") -> None:
    """Refuse a missing model file, or one whose sha256 differs from the pinned one (`key.sha256`)."""
    if problem := regular_file_problem(path):
        hint = "; copy it there or fetch a known model with 'appliance models fetch NAME' (see 'appliance models list')"
        raise ModelError(f"model file {path} {problem}{hint if problem == 'does not exist' else ''}")
    if expected_sha256 is None:
        return
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ModelError(
            f"model file {path} has sha256 {actual}, but {key}.sha256 is "
            f"{expected_sha256}: refusing to start; replace the file or correct the profile"
        )


MAX_CATALOG_BYTES = 1024 * 1024


class FetchError(Exception):
    """A model that could not be fetched; nothing partial is left in the cache."""


@dataclass(frozen=True)
class ModelFile:
    path: str  # where it goes inside the model's cache folder
    url: str
    digest: str  # "sha256:<hex>" or "sha384:<hex>", as the publisher pins it
    size: int


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    license: str
    backend: str
    files: tuple[ModelFile, ...]  # the first is what detector.model.path names
    class_id: int = 0


CATALOG = {
    model.name: model
    for model in (
        KnownModel(
            "person-detection-retail-0013",
            "Intel Open Model Zoo pedestrian detector (RMNet + SSD), 544x320, FP32 IR",
            "Apache-2.0",
            "openvino",
            (
                ModelFile(
                    "FP32/person-detection-retail-0013.xml",
                    f"{OMZ}/2022.1/models_bin/3/person-detection-retail-0013/FP32/person-detection-retail-0013.xml",
                    "sha384:0a346bc301457760eed3570a03a650529016505487c8f76bc4fb06d4a68d9ac901def7d5d7d4728b0699ab359dec4cfb",
                    470356,
                ),
                ModelFile(
                    "FP32/person-detection-retail-0013.bin",
                    f"{OMZ}/2022.1/models_bin/3/person-detection-retail-0013/FP32/person-detection-retail-0013.bin",
                    "sha384:9e0fb51e3b9064657b14ddd8c190f7088fd561a184acd38ba7a7d4c491879e56a5a6d4619810cbbaef36a9653810486a",
                    2891364,
                ),
            ),
            class_id=1,
        ),
        KnownModel(
            "pedestrian-detection-adas-0002",
            "Intel Open Model Zoo pedestrian detector (MobileNet + SSD), 672x384, FP16 IR",
            "Apache-2.0",
            "openvino",
            (
                ModelFile(
                    "FP16/pedestrian-detection-adas-0002.xml",
                    f"{OMZ}/2021.4/models_bin/3/pedestrian-detection-adas-0002/FP16/pedestrian-detection-adas-0002.xml",
                    "sha256:39d623808956ebe550fbf3ef9837cb86dd304169e0eda79cc11ede581a935217",
                    245055,
                ),
                ModelFile(
                    "FP16/pedestrian-detection-adas-0002.bin",
                    f"{OMZ}/2021.4/models_bin/3/pedestrian-detection-adas-0002/FP16/pedestrian-detection-adas-0002.bin",
                    "sha256:693753b7466da913b537016b31e3012f8ce6a885ac0897e3986eeca66d4ef8e6",
                    2330176,
                ),
            ),
            class_id=1,
        ),
        KnownModel(
            "rfb-640-masked-face",
            "Ultra-Light-Fast RFB-640 face detector trained on faces and masked faces (masks.model), 640x480, ONNX",
            "MIT",
            "opencv",
            (
                ModelFile(
                    "RFB-640-masked_face-v2.onnx",
                    "https://raw.githubusercontent.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB/"
                    "dffdddda9794a50607cba8f318507a28c1c27cab/masked_face/pretrained/RFB-640-masked_face-v2.onnx",
                    "sha256:27ca3e5985f722e91efea7993f625716de627303c4bafb40bb26f456286beca8",
                    1566571,
                ),
            ),
        ),
    )
}


def load_catalog(path: Path) -> dict[str, KnownModel]:
    """A site's own catalog: a JSON list of models shaped like KnownModel. Names and file paths
    must stay inside the cache: a catalog cannot make `fetch` write anywhere else."""
    try:
        entries = json.loads(read_regular_file(path, MAX_CATALOG_BYTES))
        catalog = {
            entry["name"]: KnownModel(**{**entry, "files": tuple(ModelFile(**f) for f in entry["files"])})
            for entry in entries
        }
    except (FileReadError, ValueError, TypeError, KeyError) as error:
        raise FetchError(f"cannot read model catalog {path}: {error}") from None
    for model in catalog.values():
        for name in (model.name, *(file.path for file in model.files)):
            if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts or not name:
                raise FetchError(f"model catalog {path}: '{name}' must be a relative path inside the cache")
    return catalog


def fetch(
    model: KnownModel,
    cache: Path,
    *,
    mirror: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Download every file of `model` into `cache/<name>/`, verified; return the main file.
    Files already there with the right digest are kept. A mirror serves `<mirror>/<name>/<path>`."""
    folder = cache / model.name
    for file in model.files:
        target = folder / file.path
        if target.is_file() and _digest_of(target, file.digest) == file.digest:
            log.info("%s is already in the cache", target)
            continue
        url = f"{mirror.rstrip('/')}/{model.name}/{file.path}" if mirror else file.url
        _download(url, target, file, progress)
    return folder / model.files[0].path


def _download(url: str, target: Path, file: ModelFile, progress: Callable[[str, int, int], None] | None) -> None:
    algorithm, expected = file.digest.split(":", 1)
    digest = hashlib.new(algorithm)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, partial.open("wb") as out:
            while block := response.read(1 << 16):
                out.write(block)
                digest.update(block)
                received += len(block)
                if progress:
                    progress(file.path, received, file.size)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise FetchError(
            f"cannot download {url}: {reason}. Offline? Copy the file to {target} by hand, or use --mirror"
        ) from None
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise FetchError(
            f"{url} has {algorithm} {digest.hexdigest()}, but {expected} is pinned: refusing it "
            "(nothing was written to the cache)"
        )
    partial.replace(target)


def _digest_of(path: Path, pinned: str) -> str:
    algorithm = pinned.split(":", 1)[0]
    digest = hashlib.new(algorithm)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"{algorithm}:{digest.hexdigest()}"
