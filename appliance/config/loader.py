"""Load a profile: read, merge `extends`, resolve secrets, validate, fill defaults, check rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dacite

from appliance.config.errors import JsonPath, ProfileError, ProfileIssue
from appliance.config.merge import MergedProfile, load_merged
from appliance.config.model import Profile
from appliance.config.paths import absolute_paths, masked_url, url_secrets
from appliance.config.rules import check_rules
from appliance.config.schema import (
    fill_defaults,
    in_schema_order,
    profile_schema,
    secret_paths,
    validate,
)
from appliance.config.secrets import (
    MASK,
    REDACTOR,
    SecretRedactor,
    literal_signing_key,
    masked,
    resolve_references,
    resolve_secret_files,
)
from appliance.config.values import value_issues

log = logging.getLogger(__name__)
_DACITE = dacite.Config(cast=[tuple], strict=True)


@dataclass(frozen=True)
class LoadedProfile:
    """A valid profile: its typed view, its resolved data and where it came from."""

    path: Path
    files: tuple[Path, ...]
    data: dict[str, Any]
    secrets: frozenset[JsonPath]
    secret_values: frozenset[str]  # the values at `secrets`, passwords in camera URLs, referenced values
    profile: Profile
    merged: MergedProfile = field(repr=False, compare=False)  # where each value was written

    @property
    def name(self) -> str:
        return self.path.stem

    def issue(self, path: JsonPath, message: str) -> ProfileIssue:
        """A problem found with the value at `path` after loading, located where it was written."""
        return ProfileIssue(self.merged.location(path), path, message)

    def masked_data(self) -> dict[str, Any]:
        """The resolved data, defaults filled in, every secret masked: safe to print. Secrets
        are masked by their place (the key, the URL's password and token components), then any
        secret value left inside another string is masked as well."""
        data = masked(self.data, self.secrets, self.secret_values)
        for camera in data.get("cameras", []):
            if isinstance(camera.get("source"), str) and "://" in camera["source"]:
                camera["source"] = masked_url(camera["source"], MASK)
        return data


def load_profile(path: Path, text: str | None = None) -> LoadedProfile:
    """Load and check `path` (or `text` as if it were in `path`); raise ProfileError with every
    issue found. Paths in the result are absolute."""
    schema = profile_schema()
    merged = load_merged(path, text)
    references = resolve_references(merged)
    issues = [*references.issues, *literal_signing_key(merged, references), *resolve_secret_files(schema, merged)]
    issues += value_issues(merged)
    issues += validate(schema, merged)
    fill_defaults(schema, merged.data)
    issues += check_rules(merged.data, merged)
    if issues:
        hidden = references.substituted | secret_paths(schema, merged.data)
        raise ProfileError(_quoting_no_hidden_value(issues, merged.data, hidden))
    absolute_paths(schema, merged)
    data = in_schema_order(schema, merged.data)
    secrets = frozenset(secret_paths(schema, data) | references.from_files)
    values = frozenset(_values_at(data, secrets)) | url_secrets(data) | references.values
    REDACTOR.register(values)
    profile = dacite.from_dict(Profile, data, config=_DACITE)
    log.debug("loaded profile %s from %s", path, ", ".join(str(f) for f in merged.files))
    return LoadedProfile(path, tuple(merged.files), data, secrets, values, profile, merged)


def _values_at(data: dict[str, Any], paths: frozenset[JsonPath]) -> list[str]:
    return [value for path in paths if isinstance(value := _value_at(data, path), str)]


def _quoting_no_hidden_value(
    issues: list[ProfileIssue], data: dict[str, Any], hidden: set[JsonPath]
) -> list[ProfileIssue]:
    """The issues with every value that is a secret or came from a reference masked in their
    messages: a type error must not print a password, nor `${file:/etc/shadow}` the file."""
    result = []
    for issue in issues:
        near = [h for h in hidden if h[: len(issue.path)] == issue.path or issue.path[: len(h)] == h]
        values = [v for h in near if isinstance(v := _value_at(data, h), str | int | float) and str(v)]
        if values:
            redactor = SecretRedactor()
            redactor.register(text for value in values for text in (repr(value), str(value)))
            issue = replace(issue, message=redactor.redact(issue.message))
        result.append(issue)
    return result


def _value_at(data: Any, path: JsonPath) -> Any:
    """The value at `path`, or None where the data has no such path."""
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
