"""Ed25519 signing keys for bundles (`cryptography`): generated, loaded, and named by a key id."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.files import FileReadError, read_regular_file

MAX_KEY_BYTES = 16 * 1024


class KeyFileError(Exception):
    """A key file that cannot be used, and why (never its content)."""


def key_id(public: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, in hex: what a signature names its key by."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def short_id(key: str) -> str:
    """The 16 hex characters a key is shown by, in messages and logs (the full id is in signatures)."""
    return key[:16]


def generate(private_path: Path, public_path: Path) -> str:
    """A new key pair: the private key written with mode 0600 (never over an existing file)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(pem)
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_path.write_bytes(pem)
    return key_id(public)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(read_regular_file(path, MAX_KEY_BYTES), password=None)
    except FileReadError as error:
        raise KeyFileError(f"{path}: {error}") from None
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(read_regular_file(path, MAX_KEY_BYTES))
    except FileReadError as error:
        raise KeyFileError(f"{path}: {error}") from None
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def trusted_keys(paths: tuple[str, ...]) -> dict[str, Ed25519PublicKey]:
    """The profile's trusted keys by key id."""
    keys = (load_public(Path(path)) for path in paths)
    return {key_id(key): key for key in keys}


def verifies(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True
