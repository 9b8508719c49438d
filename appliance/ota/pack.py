"""Making a bundle: the manifest from a profile and/or model files, signed with a key file."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
from packaging.version import Version

from appliance import __version__
from appliance.config.schema import profile_schema
from appliance.ota import keys
from appliance.ota.bundle import MANIFEST, PAYLOAD, SAFE_NAME, SIGNATURE, now, parse_manifest, sha256_of


@dataclass(frozen=True)
class BundleSpec:
    version: int
    key: Path
    profile: Path | None = None
    model_files: tuple[Path, ...] = ()  # the first is the model the detector loads
    detector: dict[str, Any] = field(default_factory=dict)  # more detector settings to merge
    hardware: str = "*"
    device: str = "*"
    expires_days: float = 30.0
    min_appliance_version: str = ""
    description: str = ""


def detector_problems(detector: dict[str, Any]) -> list[str]:
    """What the device would refuse in the bundle's detector settings (the profile schema's
    detector section; no key is required, since they merge into the device's)."""
    schema = profile_schema()
    section = {**schema["$defs"]["detector"], "$defs": schema["$defs"]}
    validator = jsonschema.Draft202012Validator(section)
    return [
        f"--detector {'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(detector)
    ]


def payload_files(spec: BundleSpec) -> list[Path]:
    return [*([spec.profile] if spec.profile else []), *spec.model_files]


def manifest_for(spec: BundleSpec) -> bytes:
    files = payload_files(spec)
    for path in files:
        if not SAFE_NAME.match(path.name):
            raise ValueError(f"{path}: a payload file name may hold only letters, digits, '.', '_' and '-'")
    if len({path.name for path in files}) != len(files):
        raise ValueError("two payload files have the same name")
    kind = "both" if spec.profile and spec.model_files else "config" if spec.profile else "model"
    created = now()
    manifest: dict[str, Any] = {
        "format": 1, "version": spec.version, "kind": kind,
        "target": {"hardware": spec.hardware, "device": spec.device},
        "min_appliance_version": spec.min_appliance_version or _release(__version__),
        "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "expires": (created + timedelta(days=spec.expires_days)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "files": [{"path": path.name, "size": path.stat().st_size, "sha256": sha256_of(path)} for path in files],
    }  # fmt: skip
    if spec.description:
        manifest["description"] = spec.description
    if spec.profile:
        manifest["profile"] = spec.profile.name
    if spec.model_files:
        detector = json.loads(json.dumps(spec.detector))
        detector.setdefault("model", {})["path"] = spec.model_files[0].name
        manifest["detector"] = detector
    raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
    parse_manifest(raw)  # what the device will check, checked here first
    return raw


def pack(spec: BundleSpec, output: Path) -> Path:
    """Write the signed bundle to `output` (through a temporary name, so an inbox never sees half)."""
    private = keys.load_private(spec.key)
    manifest = manifest_for(spec)
    signature = json.dumps({"keyid": keys.key_id(private.public_key()),
                            "signature": base64.b64encode(private.sign(manifest)).decode()}).encode()  # fmt: skip
    partial = output.with_name(f".{output.name}.partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, MANIFEST, manifest)
        _add_bytes(archive, SIGNATURE, signature)
        for path in payload_files(spec):
            info = tarfile.TarInfo(f"{PAYLOAD}/{path.name}")
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as stream:
                archive.addfile(info, stream)
    with partial.open("rb") as stream:
        os.fsync(stream.fileno())
    shutil.move(partial, output)
    return output


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    archive.addfile(info, io.BytesIO(data))


def _release(version: str) -> str:
    """The x.y.z part of a version string (what the manifest schema accepts)."""
    return ".".join(str(part) for part in Version(version).release[:3])
