"""Profile values that are files or secrets inside other values, settled once at load.

Every file path becomes absolute, relative to the profile file that wrote it (as `${file:}`
secrets already are), so the runtime never guesses a base folder. Passwords and tokens inside
camera URLs become secrets, masked like any other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from appliance.config.errors import JsonPath
from appliance.config.merge import MergedProfile
from appliance.config.schema import Schema, walk

PATH_FORMAT = "path"
SECRET_QUERY_WORDS = ("pass", "pwd", "token", "secret", "key", "auth", "sig")


def absolute_paths(schema: Schema, merged: MergedProfile) -> None:
    """Make every path in the merged data absolute, in place."""
    found: list[JsonPath] = []

    def visit(path: JsonPath, node: Schema, value: Any) -> None:
        if node.get("format") == PATH_FORMAT and isinstance(value, str):
            found.append(path)

    walk(schema, merged.data, visit)
    found += [("cameras", index, "source") for index, camera in enumerate(merged.data.get("cameras", []))
              if is_file_source(camera.get("source"))]  # fmt: skip
    for path in found:
        parent = _parent(merged.data, path)
        base = Path(merged.location(path).file).parent
        parent[path[-1]] = str(_absolute(parent[path[-1]], base))
    _derive_from_data_dir(merged.data)


def _derive_from_data_dir(data: dict[str, Any]) -> None:
    """The OTA folders left unset live in storage.data_dir, so moving it moves them."""
    data_dir, ota = Path(data["storage"]["data_dir"]), data["ota"]
    for key, folder in (("inbox", "inbox"), ("state_dir", "state")):
        if ota.get(key) is None:
            ota[key] = str(data_dir / "ota" / folder)


def is_file_source(source: object) -> bool:
    """A camera source that names a video file (not a URL, a device or a device index)."""
    return isinstance(source, str) and "://" not in source and not source.startswith("/dev/")


def url_secrets(data: dict[str, Any]) -> set[str]:
    """Passwords and token-like query values in the cameras' URLs."""
    secrets: set[str] = set()
    for camera in data.get("cameras", []):
        source = camera.get("source")
        if not isinstance(source, str) or "://" not in source:
            continue
        try:
            parts = urlsplit(source)
            password = parts.password
        except ValueError:
            continue
        if password:
            secrets.add(password)
        for name, value in parse_qsl(parts.query):
            if any(word in name.lower() for word in SECRET_QUERY_WORDS):
                secrets.add(value)
    return secrets


def masked_url(url: str, mask: str) -> str:
    """`url` with its password and token-like query values replaced by `mask`, found by their
    place in the URL, so no encoding of them (percent-escapes, say) gets through; a URL that
    does not parse is masked whole."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return mask
    netloc = parts.netloc
    if password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.split(':', 1)[0]}:{mask}@{host}"
    pairs = [_masked_pair(pair, mask) for pair in parts.query.split("&")] if parts.query else []
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))


def _masked_pair(pair: str, mask: str) -> str:
    name, equals, _ = pair.partition("=")
    secret = any(word in unquote(name).lower() for word in SECRET_QUERY_WORDS)
    return f"{name}={mask}" if secret and equals else pair


def _absolute(value: str, base: Path) -> Path:
    """`value` made absolute against `base`, with '..' folded but links kept as written."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath((base / path).absolute()))


def _parent(data: Any, path: JsonPath) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data
