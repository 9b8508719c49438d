"""`extends:`: merge a profile onto the profiles it extends, keeping where each value came from."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config.errors import JsonPath, Location, ProfileError, ProfileIssue
from appliance.config.yamlio import ProfileDocument

EXTENDS_KEY = "extends"


@dataclass
class MergedProfile:
    """Plain data merged from a profile and its bases, with the source position of every value."""

    data: dict[str, Any]
    value_locations: dict[JsonPath, Location] = field(default_factory=dict)
    key_locations: dict[JsonPath, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        """Where `path` was written, or its nearest written parent."""
        if key and path in self.key_locations:
            return self.key_locations[path]
        while path not in self.value_locations and path:
            path = path[:-1]
        return self.value_locations.get(path, Location(str(self.files[-1])))


def load_merged(path: Path, text: str | None = None) -> MergedProfile:
    """Load `path` (or `text` as if it were in `path`) and, depth first, every profile it extends."""
    return _load(path, chain=(), text=text)


def _load(path: Path, chain: tuple[Path, ...], text: str | None = None) -> MergedProfile:
    document = ProfileDocument.load(path, text)
    bases = _base_paths(document)
    merged = MergedProfile(data={})
    for base_path in bases:
        resolved = base_path.resolve()
        if resolved in chain or resolved == path.resolve():
            cycle = " -> ".join(p.name for p in (*chain, path.resolve(), resolved))
            location = document.value_locations[(EXTENDS_KEY,)]
            raise ProfileError([ProfileIssue(location, (EXTENDS_KEY,), f"cyclic extends: {cycle}")])
        if not base_path.is_file():
            location = document.value_locations[(EXTENDS_KEY,)]
            message = f"extended profile '{base_path}' does not exist"
            raise ProfileError([ProfileIssue(location, (EXTENDS_KEY,), message)])
        _overlay(merged, _load(base_path, (*chain, path.resolve())))
    own = MergedProfile(
        data=_plain(document.data),
        value_locations=document.value_locations,
        key_locations=document.key_locations,
        files=[path],
    )
    own.data.pop(EXTENDS_KEY, None)
    _overlay(merged, own)
    return merged


def _base_paths(document: ProfileDocument) -> list[Path]:
    value = document.data.get(EXTENDS_KEY)
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        location = document.value_locations[(EXTENDS_KEY,)]
        message = "expected a profile file name or a list of them"
        raise ProfileError([ProfileIssue(location, (EXTENDS_KEY,), message)])
    return [document.path.parent / name for name in names]


def _overlay(target: MergedProfile, source: MergedProfile) -> None:
    """Merge `source` onto `target`: mappings key by key, anything else replaced whole."""
    replaced = _merge_data(target.data, source.data, ())
    for prefix in replaced:
        for locations in (target.value_locations, target.key_locations):
            for stale in [p for p in locations if p[: len(prefix)] == prefix and p != prefix]:
                del locations[stale]
    target.value_locations.update(source.value_locations)
    target.key_locations.update(source.key_locations)
    target.files.extend(source.files)


def _merge_data(target: dict[str, Any], source: dict[str, Any], path: JsonPath) -> list[JsonPath]:
    replaced: list[JsonPath] = []
    for key, value in source.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            replaced.extend(_merge_data(target[key], value, here))
        else:
            target[key] = copy.deepcopy(value)
            replaced.append(here)
    return replaced


def _plain(node: Any) -> Any:
    """Round-trip YAML nodes as plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)
