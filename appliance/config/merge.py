"""`extends:`: merge a profile onto the profiles it extends, keeping where each value came from."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config.errors import JsonPath, Location, ProfileError, ProfileIssue
from appliance.config.yamlio import ProfileDocument
from appliance.files import regular_file_problem

EXTENDS_KEY = "extends"
PROFILE_SUFFIXES = (".yaml", ".yml")
MAX_EXTENDS_DEPTH = 8
MAX_EXTENDED_FILES = 32


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
    return _Loader(path).load(path, (), text)


def shipped_profiles() -> Path:
    """The folder of the device profiles the appliance ships, which any profile may extend:
    $APPLIANCE_PROFILES, or `profiles/` beside the package in a source tree."""
    return Path(os.environ.get("APPLIANCE_PROFILES", Path(__file__).resolve().parents[2] / "profiles"))


class _Loader:
    """One load of a profile tree. Each extended file is read once however often it is named, the
    tree is bounded in depth and in files, and every extended file must be a profile (.yaml or
    .yml, a regular file) inside the folder of the top profile or the shipped profiles' folder,
    links resolved: `extends` can never read, and so never echo in a message, a file from
    elsewhere."""

    def __init__(self, top: Path) -> None:
        self.roots = (top.parent.resolve(), shipped_profiles().resolve())
        self.bases: dict[Path, MergedProfile] = {}

    def load(self, path: Path, chain: tuple[Path, ...], text: str | None = None) -> MergedProfile:
        document = ProfileDocument.load(path, text)
        chain = (*chain, path.resolve())
        merged = MergedProfile(data={})
        for base_path in self._base_paths(document, chain):
            resolved = base_path.resolve()
            if resolved not in self.bases:
                self.bases[resolved] = self.load(base_path, chain)
            _overlay(merged, self.bases[resolved])
        own = MergedProfile(
            data=_plain(document.data),
            value_locations=document.value_locations,
            key_locations=document.key_locations,
            files=[path],
        )
        own.data.pop(EXTENDS_KEY, None)
        _overlay(merged, own)
        return merged

    def _base_paths(self, document: ProfileDocument, chain: tuple[Path, ...]) -> list[Path]:
        value = document.data.get(EXTENDS_KEY)
        if value is None:
            return []
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _extends_error(document, "expected a profile file name or a list of them")
        if len(chain) > MAX_EXTENDS_DEPTH:
            raise _extends_error(document, f"profiles extend each other more than {MAX_EXTENDS_DEPTH} levels deep")
        paths = []
        for name in names:
            if names.count(name) > 1:
                raise _extends_error(document, f"'{name}' is listed more than once")
            paths.append(self._base_path(document, name, chain))
        return paths

    def _base_path(self, document: ProfileDocument, name: str, chain: tuple[Path, ...]) -> Path:
        if any(ord(character) < 0x20 for character in name):
            raise _extends_error(document, "a profile name may not hold control characters")
        path = document.path.parent / name
        if "/" not in name and not os.path.lexists(path) and (shipped_profiles() / name).is_file():
            path = shipped_profiles() / name  # a shipped profile by its name, from anywhere
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a loop of links
            raise _extends_error(
                document, f"extended profile '{name}' is unreadable (a loop of symbolic links)"
            ) from None
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise _extends_error(
                document,
                f"'{name}' is outside {self.roots[0]}; a profile can only extend profiles in its own folder "
                f"tree or the shipped profiles in {self.roots[1]}",
            )
        if path.suffix.lower() not in PROFILE_SUFFIXES:
            raise _extends_error(document, f"'{name}' is not a profile: expected a .yaml or .yml file")
        if resolved in chain:
            cycle = " -> ".join(p.name for p in (*chain, resolved))
            raise _extends_error(document, f"cyclic extends: {cycle}")
        if problem := regular_file_problem(path):
            raise _extends_error(document, f"extended profile '{name}' {problem}")
        if resolved not in self.bases and len(self.bases) >= MAX_EXTENDED_FILES:
            raise _extends_error(document, f"more than {MAX_EXTENDED_FILES} extended profiles")
        return path


def _extends_error(document: ProfileDocument, message: str) -> ProfileError:
    return ProfileError([ProfileIssue(document.value_locations[(EXTENDS_KEY,)], (EXTENDS_KEY,), message)])


def _overlay(target: MergedProfile, source: MergedProfile) -> None:
    """Merge `source` onto `target`: mappings key by key, anything else replaced whole."""
    replaced = _merge_data(target.data, source.data, ())
    for prefix in replaced:
        for locations in (target.value_locations, target.key_locations):
            for stale in [p for p in locations if p[: len(prefix)] == prefix and p != prefix]:
                del locations[stale]
    target.value_locations.update(source.value_locations)
    target.key_locations.update(source.key_locations)
    target.files.extend(f for f in source.files if f not in target.files)


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
