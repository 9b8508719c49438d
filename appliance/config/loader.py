"""Load a profile: read, merge `extends`, resolve secrets, validate, fill defaults, check rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dacite

from appliance.config.errors import JsonPath, ProfileError
from appliance.config.merge import load_merged
from appliance.config.model import Profile
from appliance.config.paths import absolute_paths, url_secrets
from appliance.config.rules import check_rules
from appliance.config.schema import (
    fill_defaults,
    in_schema_order,
    profile_schema,
    secret_paths,
    validate,
)
from appliance.config.secrets import REDACTOR, masked, resolve_references, resolve_secret_files

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

    @property
    def name(self) -> str:
        return self.path.stem

    def masked_data(self) -> dict[str, Any]:
        """The resolved data, defaults filled in, every secret masked: safe to print."""
        return masked(self.data, self.secrets, self.secret_values)


def load_profile(path: Path, text: str | None = None) -> LoadedProfile:
    """Load and check `path` (or `text` as if it were in `path`); raise ProfileError with every
    issue found. Paths in the result are absolute."""
    schema = profile_schema()
    merged = load_merged(path, text)
    references = resolve_references(merged)
    issues = [*references.issues, *resolve_secret_files(schema, merged)]
    issues += validate(schema, merged)
    fill_defaults(schema, merged.data)
    issues += check_rules(merged.data, merged)
    if issues:
        raise ProfileError(issues)
    absolute_paths(schema, merged)
    data = in_schema_order(schema, merged.data)
    secrets = frozenset(secret_paths(schema, data) | references.from_files)
    values = frozenset(_values_at(data, secrets)) | url_secrets(data) | references.values
    REDACTOR.register(values)
    profile = dacite.from_dict(Profile, data, config=_DACITE)
    log.debug("loaded profile %s from %s", path, ", ".join(str(f) for f in merged.files))
    return LoadedProfile(path, tuple(merged.files), data, secrets, values, profile)


def _values_at(data: dict[str, Any], paths: frozenset[JsonPath]) -> list[str]:
    values = []
    for path in paths:
        node: Any = data
        for part in path:
            node = node[part]
        if isinstance(node, str):
            values.append(node)
    return values
