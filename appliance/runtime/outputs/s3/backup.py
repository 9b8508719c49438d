"""Incremental backups of the event log and the history store to S3, and their restore.

Written by hand because what a small device needs is small: files cut into fixed 4 MiB chunks,
each stored once under its sha256 (an event-log file that grew uploads only its last chunk; the
history store, copied page for page by SQLite's backup API, uploads only the chunks whose pages
changed), and a manifest per backup that names every file, its size, its sha256 and its chunks.
The manifest is written last, so a backup cut short is never taken for a whole one; a restore
checks every chunk and every file against it. Tools such as restic do this and more, but bring a
binary and a repository format of their own; this is the reference system's `s3_backup`, made
incremental and checkable.

Bucket layout under <prefix><device>/backup/: chunks/<sha256>, manifests/<UTC time>.json."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from appliance.history.store import store_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
CHUNK_BYTES = 4 * 1024 * 1024
DIGEST = re.compile(r"[0-9a-f]{64}")
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
EVENTS_FOLDER = "events"
HISTORY_NAME = store_path(Path()).as_posix()  # history/history.sqlite


def key_base(prefix: str, device_id: str) -> str:
    """Where a device's objects (screenshots, backups) begin in the bucket: s3.prefix + device id."""
    return f"{prefix}{device_id}/"


class BackupError(Exception):
    """A backup or restore that cannot be done, said plainly."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the data folder, POSIX
    size: int
    sha256: str
    chunks: tuple[str, ...]


@dataclass(frozen=True)
class BackupResult:
    manifest: str
    files: int
    bytes: int
    chunks_uploaded: int
    bytes_uploaded: int
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    manifest: str
    files: int
    bytes: int
    seconds: float


class Bucket:
    """The device's backup area of a bucket."""

    def __init__(self, client: S3Client, bucket: str, base: str) -> None:
        self.client, self.bucket, self.root = client, bucket, f"{base}backup/"

    def chunk_key(self, digest: str) -> str:
        return f"{self.root}chunks/{digest}"

    def keys(self, folder: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.root + folder)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"]

    def manifests(self) -> list[str]:
        """Manifest names, oldest first."""
        return sorted(key.rsplit("/", 1)[1] for key in self.keys("manifests/"))

    def read_manifest(self, name: str) -> dict[str, Any]:
        body = self.client.get_object(Bucket=self.bucket, Key=f"{self.root}manifests/{name}")["Body"]
        data = body.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise BackupError(f"manifest {name} is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            manifest: dict[str, Any] = json.loads(data)
        except ValueError:
            raise BackupError(f"manifest {name} is not JSON") from None
        return manifest


def back_up(bucket: Bucket, data_dir: Path, cache_path: Path, *, device_id: str, keep: int) -> BackupResult:
    """Upload what changed since the last backup and a new manifest; keep the newest `keep`."""
    started = time.monotonic()
    staging = data_dir / "s3" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    cache = _load_cache(cache_path)
    uploader = _Uploader(bucket, {key.rsplit("/", 1)[1] for key in bucket.keys("chunks/")})
    try:
        entries = [_entry(relative, source, cache, uploader) for relative, source in _sources(data_dir, staging)]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ.json")  # names sort as the backups were made
    manifest = {"v": MANIFEST_VERSION, "device": device_id, "created": time.time(), "chunk_bytes": CHUNK_BYTES,
                "files": [entry.__dict__ | {"chunks": list(entry.chunks)} for entry in entries]}  # fmt: skip
    bucket.client.put_object(Bucket=bucket.bucket, Key=f"{bucket.root}manifests/{name}",
                             Body=json.dumps(manifest).encode(), ContentType="application/json")  # fmt: skip
    _save_cache(cache_path, cache, entries)
    _prune(bucket, keep)
    total = sum(entry.size for entry in entries)
    return BackupResult(name, len(entries), total, uploader.chunks, uploader.bytes, time.monotonic() - started)


def restore(
    bucket: Bucket, target: Path, *, manifest: str | None = None, progress: Callable[[int, int], None] | None = None
) -> RestoreResult:
    """Every file of a backup (the newest unless named) into `target`, an empty or new folder;
    checked chunk by chunk and file by file. Nothing is left in `target` when it fails."""
    started = time.monotonic()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not an empty folder: a restore writes only into an empty one")
    names = bucket.manifests()
    if not names:
        raise BackupError(f"no backup in s3://{bucket.bucket}/{bucket.root}")
    name = manifest or names[-1]
    if name not in names:
        raise BackupError(f"no manifest {name}; there are: {', '.join(names[-5:])}")
    entries = _manifest_entries(bucket.read_manifest(name), name)
    partial = target.parent / f".{target.name}.restoring"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for done, entry in enumerate(entries, 1):
            _restore_file(bucket, entry, partial)
            if progress is not None:
                progress(done, len(entries))
        if target.exists():
            target.rmdir()
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return RestoreResult(name, len(entries), sum(e.size for e in entries), time.monotonic() - started)


def _sources(data_dir: Path, staging: Path) -> Iterator[tuple[str, Path]]:
    """(path in the backup, file to read): the event log's files, and a consistent copy of the
    history store."""
    events = data_dir / EVENTS_FOLDER
    if events.is_dir():
        for file in sorted(events.rglob("*")):
            if file.is_file() and not file.is_symlink():
                yield file.relative_to(data_dir).as_posix(), file
    store = data_dir / HISTORY_NAME
    if store.is_file():
        copy = staging / "history.sqlite"
        source = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        yield HISTORY_NAME, copy


class _Uploader:
    """Puts the chunks the bucket does not hold yet."""

    def __init__(self, bucket: Bucket, stored: set[str]) -> None:
        self.bucket, self.stored = bucket, stored
        self.chunks = self.bytes = 0

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self.stored:
            self.bucket.client.put_object(Bucket=self.bucket.bucket, Key=self.bucket.chunk_key(digest), Body=data)
            self.stored.add(digest)
            self.chunks, self.bytes = self.chunks + 1, self.bytes + len(data)
        return digest


def _entry(relative: str, source: Path, cache: dict[str, Any], uploader: _Uploader) -> FileEntry:
    """The file's entry, its new chunks uploaded. An unchanged file (same size and time) whose
    chunks the bucket holds is not read again. A growing event-log file is taken up to its size
    when opened, cut after its last whole line."""
    stat = source.stat()
    known: dict[str, Any] = cache.get(relative) or {}
    unchanged = bool(known) and (known["size"], known["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
    if unchanged and all(digest in uploader.stored for digest in known["chunks"]):
        return FileEntry(relative, known["size"], known["sha256"], tuple(known["chunks"]))
    whole, chunks, size = hashlib.sha256(), [], 0
    with source.open("rb") as file:
        while size < stat.st_size and (data := file.read(min(CHUNK_BYTES, stat.st_size - size))):
            if size + len(data) >= stat.st_size and relative.endswith(".jsonl") and b"\n" in data:
                data = data[: data.rfind(b"\n") + 1]
            whole.update(data)
            chunks.append(uploader.put(data))
            size += len(data)
            if len(data) < CHUNK_BYTES:
                break
    cache[relative] = {"size": size, "mtime_ns": stat.st_mtime_ns, "sha256": whole.hexdigest(), "chunks": chunks}
    return FileEntry(relative, size, whole.hexdigest(), tuple(chunks))


def _prune(bucket: Bucket, keep: int) -> None:
    """Drop manifests beyond the newest `keep`, then the chunks no kept manifest names."""
    names = bucket.manifests()
    for old in names[:-keep]:
        bucket.client.delete_object(Bucket=bucket.bucket, Key=f"{bucket.root}manifests/{old}")
    if len(names) <= keep:
        return
    named = {
        digest for name in names[-keep:] for entry in bucket.read_manifest(name)["files"] for digest in entry["chunks"]
    }
    for key in list(bucket.keys("chunks/")):
        if key.rsplit("/", 1)[1] not in named:
            bucket.client.delete_object(Bucket=bucket.bucket, Key=key)


def _manifest_entries(manifest: dict[str, Any], name: str) -> list[FileEntry]:
    """The manifest's files, each path checked: a bucket is not trusted to name where files go."""
    if manifest.get("v") != MANIFEST_VERSION or manifest.get("chunk_bytes") != CHUNK_BYTES:
        raise BackupError(f"manifest {name} is of an unknown version or chunk size")
    entries = []
    try:
        for item in manifest["files"]:
            path = PurePosixPath(item["path"])
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise BackupError(f"manifest {name} names a file outside the data folder: {str(path)[:200]!r}")
            entries.append(
                FileEntry(str(path), int(item["size"]), str(item["sha256"]), tuple(map(str, item["chunks"])))
            )
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"manifest {name} is malformed") from None
    return entries


def _restore_file(bucket: Bucket, entry: FileEntry, root: Path) -> None:
    destination = root / entry.path
    destination.parent.mkdir(parents=True, exist_ok=True)
    whole, size = hashlib.sha256(), 0
    with destination.open("wb") as file:
        for digest in entry.chunks:
            try:
                data = bucket.client.get_object(Bucket=bucket.bucket, Key=bucket.chunk_key(digest))["Body"].read(
                    CHUNK_BYTES + 1
                )
            except bucket.client.exceptions.NoSuchKey:
                raise BackupError(f"{entry.path}: chunk {digest[:12]} is missing from the bucket") from None
            if hashlib.sha256(data).hexdigest() != digest:
                raise BackupError(f"{entry.path}: chunk {digest[:12]} does not match its checksum")
            whole.update(data)
            size += len(data)
            file.write(data)
    if (size, whole.hexdigest()) != (entry.size, entry.sha256):
        raise BackupError(f"{entry.path}: the restored file does not match the manifest")


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        cache: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache


def _save_cache(path: Path, cache: dict[str, Any], entries: list[FileEntry]) -> None:
    kept = {entry.path: cache[entry.path] for entry in entries if entry.path in cache}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(kept))
    partial.replace(path)
