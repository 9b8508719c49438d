"""Why a bundle was refused or rolled back: a stable reason code (a metric label) and a message."""

from __future__ import annotations

REASONS = (
    "oversized", "too_many_files", "truncated", "absolute_path", "path_traversal", "symlink", "hardlink",
    "device_node", "unexpected_entry", "bad_manifest", "unknown_key", "bad_signature", "missing_file",
    "size_mismatch", "tampered", "unlisted_file", "wrong_target", "expired", "too_new", "downgrade", "replay",
    "invalid_config", "model_failed", "unhealthy", "interrupted", "error",
)  # fmt: skip


class BundleError(Exception):
    def __init__(self, reason: str, message: str, version: int | None = None) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.version = version  # the bundle's version, once its manifest was read

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
