"""Secrets: `${env:NAME}`, `${file:PATH}` and `*_file` keys, resolved at load, masked on output."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config.errors import JsonPath, ProfileIssue
from appliance.config.merge import MergedProfile
from appliance.config.schema import Schema, resolve, walk
from appliance.files import FileReadError, read_regular_file

MASK = "********"
MAX_SECRET_BYTES = 64 * 1024
REFERENCE = re.compile(r"\$\{(?P<scheme>[A-Za-z_]\w*):(?P<target>[^}]*)\}")
_SECRET_FILE_SUFFIX = "_file"
SIGNING_KEY: JsonPath = ("api", "auth", "jwt_secret")


class SecretRedactor:
    """The secrets this process knows, and text with each of them replaced by the mask.

    A last line of defence: what prints a secret masks it there (`show`, URLs in logs, profile
    errors). Only whole occurrences count, not ones inside a longer word, so a short password
    such as "e" does not turn every "e" of a log into the mask and so reveal itself."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    @property
    def active(self) -> bool:
        return self._pattern is not None

    @property
    def values(self) -> frozenset[str]:
        return self._secrets

    def register(self, values: Iterable[str]) -> None:
        self._secrets = self._secrets | {value for value in values if value}
        if self._secrets:
            longest_first = sorted(self._secrets, key=len, reverse=True)  # no partial leftovers
            alternatives = "|".join(re.escape(secret) for secret in longest_first)
            self._pattern = re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])")

    def redact(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text


REDACTOR = SecretRedactor()


@dataclass
class References:
    """What resolving `${env:}` and `${file:}` references found."""

    issues: list[ProfileIssue] = field(default_factory=list)
    from_files: set[JsonPath] = field(default_factory=set)  # values read from files: secrets whole
    substituted: set[JsonPath] = field(default_factory=set)  # every value with a reference: never quoted
    values: set[str] = field(default_factory=set)  # read from files, or put into URLs: masked anywhere


def resolve_references(merged: MergedProfile) -> References:
    """Substitute references in every string, in place."""
    found = References()
    issues, from_files = found.issues, found.from_files

    def substitute(path: JsonPath, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            found.substituted.add(path)
            scheme, target = match["scheme"], match["target"]
            if scheme == "env":
                if target not in os.environ:
                    issues.append(_issue(merged, path, f"environment variable {target} is not set"))
                    return ""
                if "://" in text:  # a credential in a URL; a plain setting stays readable
                    found.values.add(os.environ[target])
                return os.environ[target]
            if scheme == "file":
                from_files.add(path)
                secret = _read_secret(merged, path, target, issues)
                found.values.add(secret)
                return secret
            issues.append(
                _issue(
                    merged,
                    path,
                    f"unknown reference '${{{scheme}:…}}'; use ${{env:NAME}} or ${{file:PATH}}",
                )
            )
            return ""

        return REFERENCE.sub(one, text)

    _map_strings(merged.data, (), substitute)
    return found


def literal_signing_key(merged: MergedProfile, references: References) -> list[ProfileIssue]:
    """The API's JWT signing key written in the profile itself. Every viewer can read the profile
    (masked); a key in it is one masking slip away from making a viewer admin, so it must come
    from a file or the environment, or be the one generated for the device."""
    api = merged.data.get("api")
    auth = api.get("auth") if isinstance(api, dict) else None
    key = auth.get("jwt_secret") if isinstance(auth, dict) else None
    if key is None or SIGNING_KEY in references.substituted:
        return []
    message = ("the JWT signing key may not be written in the profile, which every viewer can read: "
               "use api.auth.jwt_secret_file, ${file:PATH} or ${env:NAME}, or leave it out to use the key "
               "generated for this device")  # fmt: skip
    return [_issue(merged, SIGNING_KEY, message)]


def resolve_secret_files(schema: Schema, merged: MergedProfile) -> list[ProfileIssue]:
    """Read every `X_file` key whose sibling `X` is a secret into `X`, in place."""
    issues: list[ProfileIssue] = []

    def visit(path: JsonPath, node: Schema, value: Any) -> None:
        if not isinstance(value, dict):
            return
        for key, child in node.get("properties", {}).items():
            file_key = key + _SECRET_FILE_SUFFIX
            if not resolve(schema, child).get("writeOnly") or not isinstance(value.get(file_key), str):
                continue
            if key in value:
                message = f"set either {key} or {file_key}, not both"
                issues.append(_issue(merged, (*path, file_key), message))
                continue
            value[key] = _read_secret(merged, (*path, file_key), value[file_key], issues)

    walk(schema, merged.data, visit)
    return issues


def masked(data: dict[str, Any], paths: Iterable[JsonPath], values: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of `data` with the value at each path replaced by the mask, and each of `values`
    masked wherever it appears inside a string (a password in a URL)."""
    result = copy.deepcopy(data)
    for path in paths:
        parent: Any = result
        for part in path[:-1]:
            parent = parent[part]
        if parent[path[-1]] is not None:
            parent[path[-1]] = MASK
    redactor = SecretRedactor()
    redactor.register(values)
    _map_strings(result, (), lambda _path, text: redactor.redact(text), only_references=False)
    return result


def _read_secret(merged: MergedProfile, path: JsonPath, target: str, issues: list[ProfileIssue]) -> str:
    location = merged.location(path)
    file = Path(target).expanduser()
    if not file.is_absolute():
        file = Path(location.file).parent / file
    try:
        return read_regular_file(file, MAX_SECRET_BYTES).decode("utf-8").rstrip("\r\n")
    except FileReadError as problem:
        issues.append(_issue(merged, path, f"cannot read secret file {str(file)!r}: it {problem}"))
    except UnicodeDecodeError:
        issues.append(_issue(merged, path, f"cannot read secret file {str(file)!r}: it is not UTF-8 text"))
    return ""


def _issue(merged: MergedProfile, path: JsonPath, message: str) -> ProfileIssue:
    return ProfileIssue(merged.location(path), path, message)


def _map_strings(
    node: Any, path: JsonPath, change: Callable[[JsonPath, str], str], *, only_references: bool = True
) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        here = (*path, key)
        if isinstance(value, str):
            if not only_references or "${" in value:
                node[key] = change(here, value)
        else:
            _map_strings(value, here, change, only_references=only_references)
