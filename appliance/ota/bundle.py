"""The bundle format, and reading one without trusting it.

A bundle is a tar archive (optionally gzip-compressed) of exactly: `manifest.json`, whose exact
bytes are signed; `manifest.sig`, `{"keyid": ..., "signature": base64}` with an Ed25519
signature over them; and `payload/<name>` for every file the manifest lists with its size and
sha256. Nothing in it is believed before it is checked: every entry's kind, name, count and size
are checked before a byte is written, payload files are streamed out with their hashes taken,
and only then is the signature verified and the manifest compared with the files. Hand-written
rather than `tarfile`'s extraction filters: those sanitize (drop a link, strip a leading /),
where a signed bundle with any such entry is refused outright, with the entry named."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import re
import tarfile
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jsonschema import Draft202012Validator

from appliance.ota import keys
from appliance.ota.rejection import BundleError

MANIFEST, SIGNATURE, PAYLOAD = "manifest.json", "manifest.sig", "payload"
CLOCK_SKEW = timedelta(days=1)  # a bundle made later than this ahead of the device clock is refused
MAX_MANIFEST_BYTES = 64 * 1024
MAX_SIGNATURE_BYTES = 4 * 1024
MAX_FILES = 64
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_CHUNK = 1024 * 1024
HEADER_ALLOWANCE = 1024 * 1024  # tar headers beyond the files' own bytes
STILL_WRITING = "; if it was still being copied, copy it as NAME.partial and rename it when done"
GZIP_MAGIC, TAR_MAGIC_END = b"\x1f\x8b", 262  # a tar header says "ustar" at bytes 257..261


@dataclass(frozen=True)
class PayloadFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    version: int
    kind: str  # config, model or both
    hardware: str  # target, or *
    device: str  # target, or *
    min_appliance_version: str
    created: datetime
    expires: datetime
    files: tuple[PayloadFile, ...]
    description: str = ""
    profile: str | None = None  # payload file with the new profile
    detector: dict[str, Any] | None = None  # merge patch for the detector section
    raw: bytes = b""  # the signed bytes

    @property
    def model_file(self) -> str | None:
        return str(self.detector["model"]["path"]) if self.detector else None


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_files: int = MAX_FILES


@cache
def _manifest_validator() -> Draft202012Validator:
    schema = json.loads(Path(__file__).with_name("manifest.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)  # its date-times are checked by _time, alike on every machine


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleError("bad_manifest", "manifest.json is not UTF-8 JSON") from None
    errors = sorted(_manifest_validator().iter_errors(data), key=lambda error: list(error.absolute_path))
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path) or "(top)"
        raise BundleError("bad_manifest", f"manifest.json at {where}: {errors[0].message[:200]}")
    if type(data["version"]) is not int:  # JSON's 8.0 passes the schema's "integer"
        raise BundleError("bad_manifest", f"manifest.json at version: {data['version']!r} is not a whole number")
    files = tuple(PayloadFile(item["path"], item["size"], item["sha256"]) for item in data["files"])
    created, expires = _time(data["created"], "created"), _time(data["expires"], "expires")
    if created > now() + CLOCK_SKEW:
        raise BundleError("bad_manifest", f"manifest.json at created: {data['created']!r} is in the future")
    manifest = Manifest(
        version=data["version"], kind=data["kind"], hardware=data["target"]["hardware"],
        device=data["target"]["device"], min_appliance_version=data["min_appliance_version"],
        created=created, expires=expires, files=files,
        description=data.get("description", ""), profile=data.get("profile"), detector=data.get("detector"), raw=raw,
    )  # fmt: skip
    names = [item.path for item in files]
    if len(set(names)) != len(names):
        raise BundleError("bad_manifest", "manifest.json lists a file twice")
    for role, name in (("profile", manifest.profile), ("detector.model.path", manifest.model_file)):
        if name is not None and name not in names:
            raise BundleError("bad_manifest", f"manifest.json: {role} names {name!r}, which is not among its files")
    return manifest


def _time(text: str, key: str) -> datetime:
    """An RFC 3339 date-time of the manifest; anything else ("yesterday", a leap second) is a
    refusal, not a traceback."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BundleError("bad_manifest", f"manifest.json at {key}: {text[:40]!r} is not a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def unpack(bundle: Path, into: Path, limits: Limits) -> tuple[bytes, bytes]:
    """Check every entry of `bundle` and stream its payload files into the empty folder `into`;
    the manifest's and the signature's bytes. Nothing here is verified against the signature yet."""
    size = bundle.stat().st_size
    if size > limits.max_bytes:
        message = f"the bundle is {size} bytes; the limit is {limits.max_bytes} (ota.max_bundle_mb)"
        raise BundleError("oversized", message)
    manifest = signature = None
    seen: set[str] = set()
    total = 0
    try:
        with (
            closing(_decompressed(bundle, limits.max_bytes + HEADER_ALLOWANCE)) as source,
            tarfile.open(fileobj=cast(IO[bytes], source), mode="r|") as archive,
        ):
            for member in archive:
                name = _checked_name(member)
                if member.isdir():
                    continue
                if name in seen:
                    raise BundleError("unexpected_entry", f"{_shown(name)} is in the bundle twice")
                seen.add(name)
                if len(seen) > limits.max_files + 2:
                    raise BundleError("too_many_files", f"more than {limits.max_files} payload files")
                total += member.size
                if total > limits.max_bytes:
                    raise BundleError("oversized", f"the files unpack to more than {limits.max_bytes} bytes")
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file, checked above
                if name == MANIFEST:
                    manifest = _small(stream, member, MAX_MANIFEST_BYTES)
                elif name == SIGNATURE:
                    signature = _small(stream, member, MAX_SIGNATURE_BYTES)
                else:
                    _write_payload(stream, member, into / name.removeprefix(f"{PAYLOAD}/"))
            source.drain()  # to the gzip trailer, whose checksum tells a damaged stream
    except BundleError:
        raise
    except Exception as error:  # whatever a crafted archive makes the reader raise is a refusal
        raise BundleError("truncated", f"the archive is damaged or cut short ({type(error).__name__}: "
                          f"{str(error)[:200]}){STILL_WRITING}") from None  # fmt: skip
    if manifest is None or signature is None:
        missing = MANIFEST if manifest is None else SIGNATURE
        raise BundleError("truncated", f"the bundle has no {missing}{STILL_WRITING}")
    return manifest, signature


def _decompressed(bundle: Path, limit: int) -> _Bounded:
    """The bundle's tar bytes, plain or gzip-compressed (nothing else), counted as they are read:
    a header that declares gigabytes is refused at `limit`, before it is held in memory."""
    with bundle.open("rb") as stream:
        head = stream.read(TAR_MAGIC_END)
    if head[:2] == GZIP_MAGIC:
        source: IO[bytes] = cast(IO[bytes], gzip.GzipFile(bundle, "rb"))
    elif head[TAR_MAGIC_END - 5 :] == b"ustar":
        source = bundle.open("rb")
    else:
        raise BundleError("unexpected_entry", "the bundle is neither a tar nor a gzip-compressed tar "
                          "(bzip2, xz and others are not accepted)")  # fmt: skip
    return _Bounded(source, limit)


class _Bounded:
    """Reads a stream up to `limit` bytes; asking for more is a refusal."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.stream, self.limit, self.left = stream, limit, limit

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise BundleError("oversized", f"the bundle unpacks to more than {self.limit} bytes")
        data = self.stream.read(self.left if size is None or size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def drain(self) -> None:
        """Reads what is left after the tar's end marker: only then does gzip check its CRC."""
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        self.stream.close()


def _checked_name(member: tarfile.TarInfo) -> str:
    name = member.name
    shown = _shown(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError("absolute_path", f"{shown} is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BundleError("path_traversal", f"{shown} climbs out of the bundle (..)")
    if member.issym():
        raise BundleError("symlink", f"{shown} is a symbolic link")
    if member.islnk():
        raise BundleError("hardlink", f"{shown} is a hard link")
    if member.ischr() or member.isblk() or member.isfifo():
        raise BundleError("device_node", f"{shown} is a device node or FIFO")
    if member.issparse():
        raise BundleError("unexpected_entry", f"{shown} is a sparse file")
    if member.isdir() and parts == [PAYLOAD]:
        return PAYLOAD
    if not member.isreg():
        raise BundleError("unexpected_entry", f"{shown} is neither a regular file nor the payload folder")
    if parts in ([MANIFEST], [SIGNATURE]) or (len(parts) == 2 and parts[0] == PAYLOAD and SAFE_NAME.match(parts[1])):
        return "/".join(parts)
    raise BundleError("unexpected_entry", f"{shown} is not manifest.json, manifest.sig or payload/NAME")


def _shown(name: str) -> str:
    """An entry's name for a message: escaped and cut short, since it comes from the bundle."""
    return ascii(name[:120])


def _small(stream: IO[bytes], member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise BundleError("oversized", f"{member.name} is larger than {limit} bytes")
    data = stream.read(limit + 1)
    if len(data) != member.size:
        raise BundleError("truncated", f"{member.name} is cut short")
    return data


def _write_payload(stream: IO[bytes], member: tarfile.TarInfo, target: Path) -> None:
    written = 0
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as output:
        while written < member.size:
            chunk = stream.read(min(_CHUNK, member.size - written))
            if not chunk:
                raise BundleError("truncated", f"{_shown(member.name)} is cut short")
            output.write(chunk)
            written += len(chunk)


def verify_signature(manifest: bytes, signature: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    try:
        record = json.loads(signature.decode("utf-8"))
        key, raw = str(record["keyid"]), base64.b64decode(record["signature"], validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
        raise BundleError("bad_signature", "manifest.sig is not {keyid, signature}") from None
    if key not in trusted:
        known = ", ".join(sorted(keys.short_id(item) for item in trusted)) or "none"
        message = f"signed by key {_shown(keys.short_id(key))}, which is not among ota.trusted_keys ({known})"
        raise BundleError("unknown_key", message)
    if not keys.verifies(trusted[key], raw, manifest):
        raise BundleError("bad_signature", f"the signature does not verify with key {keys.short_id(key)}")


def check_files(manifest: Manifest, payload: Path) -> None:
    """Every listed file present with its size and sha256, and nothing else."""
    present = {path.name for path in payload.iterdir()}
    for item in manifest.files:
        path = payload / item.path
        if item.path not in present:
            raise BundleError("missing_file", f"{item.path} is listed in the manifest but not in the bundle")
        size = path.stat().st_size
        if size != item.size:
            raise BundleError("size_mismatch", f"{item.path} is {size} bytes; the manifest says {item.size}")
        if sha256_of(path) != item.sha256:
            raise BundleError("tampered", f"{item.path} does not match its sha256 in the manifest")
    if extra := sorted(present - {item.path for item in manifest.files}):
        raise BundleError("unlisted_file", f"{_shown(extra[0])} is in the bundle but not in the manifest")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def now() -> datetime:
    return datetime.now(UTC)
