"""A profile key either does what its description says or does not exist: every key of the
typed profile is read by the code that runs the appliance.

A key counts as read when some module of `appliance/` (its config package aside) reads an
attribute of its name (not a method call) and names the key's parent too (the parent's key, its
singular, or its dataclass): `settings.format` beside `profile.logging` counts for
`logging.format`, `str.format(...)` does not."""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections import defaultdict
from pathlib import Path

from appliance.config import model
from tests.conftest import REPO

RUNTIME_CODE = [p for p in (REPO / "appliance").rglob("*.py") if p.parent.name != "config"]
# Keys whose description says they are informative or about the file itself.
INFORMATIVE = {
    "Profile.schema_version": "validated against the schema; says which schema the file was written for",
    "CameraConfig.tags": "described as informative only",
    "MqttConfig.password_file": "read into mqtt.password when the profile loads (config/secrets.py)",
    "ApiAuthConfig.jwt_secret_file": "read into api.auth.jwt_secret when the profile loads (config/secrets.py)",
    "EmailChannelConfig.password_file": "read into password when the profile loads (config/secrets.py)",
    "SlackChannelConfig.url_file": "read into url when the profile loads (config/secrets.py)",
    "WebhookChannelConfig.authorization_file": "read into authorization when the profile loads (config/secrets.py)",
    "S3Config.secret_access_key_file": "read into secret_access_key when the profile loads (config/secrets.py)",
}


# Names code gives a settings object beyond the keys that hold it.
ALSO_CALLED = {"DetectorConfig": {"config"}}  # detector backends keep their settings as self.config


def model_fields() -> dict[str, list[str]]:
    """Each profile dataclass and its fields (the schema's keys)."""
    classes = {name: cls for name, cls in vars(model).items() if dataclasses.is_dataclass(cls)}
    return {name: [f.name for f in dataclasses.fields(cls)] for name, cls in classes.items()}


def held_classes(cls: type) -> set[type]:
    """The profile dataclasses a field of `cls` holds directly."""
    held = set()
    for hint in typing.get_type_hints(cls).values():
        for candidate in {
            hint,
            *typing.get_args(hint),
            *(a for h in typing.get_args(hint) for a in typing.get_args(h)),
        }:
            if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
                held.add(candidate)
    return held


def parent_names() -> dict[str, set[str]]:
    """How code may name an instance of each dataclass: its type, its type without 'Config',
    and the keys that hold one."""
    names: dict[str, set[str]] = defaultdict(set)
    for name, cls in vars(model).items():
        if not dataclasses.is_dataclass(cls):
            continue
        names[name] |= {name, name.removesuffix("Config").lower(), *ALSO_CALLED.get(name, ())}
        for field_name, hint in typing.get_type_hints(cls).items():
            for held in {hint, *typing.get_args(hint)}:
                if isinstance(held, type) and dataclasses.is_dataclass(held):
                    names[held.__name__] |= {field_name, field_name.removesuffix("s")}
    return names


def modules_reading() -> list[tuple[set[str], set[str]]]:
    """For each module: the attributes it reads, and every name it mentions."""
    found = []
    for path in RUNTIME_CODE:
        tree = ast.parse(path.read_text())
        called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        reads = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and id(n) not in called}
        mentions = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
        }
        found.append((reads, mentions))
    return found


def test_every_profile_key_is_read_by_the_appliance() -> None:
    modules, parents = modules_reading(), parent_names()
    unread = []
    for class_name, fields in model_fields().items():
        for field in fields:
            key = f"{class_name}.{field}"
            if key in INFORMATIVE:
                continue
            if not any(field in reads and parents[class_name] & mentions for reads, mentions in modules):
                unread.append(key)
    assert not unread, f"profile keys that nothing reads: {unread}"


def test_the_test_sees_reads_and_ignores_method_calls(tmp_path: Path) -> None:
    tree = ast.parse("def f(profile):\n    settings = profile.logging\n    return settings.format, '{}'.format(1)\n")
    function = tree.body[0]
    called = {id(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)}
    reads = [n.attr for n in ast.walk(function) if isinstance(n, ast.Attribute) and id(n) not in called]
    assert sorted(reads) == ["format", "logging"]
