"""The schema documents every key, and the typed profile matches it key for key."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from appliance.config import Profile
from appliance.config.schema import profile_schema, resolve

# Keys that deliberately have no default: identities, required values, and settings whose
# absence means something (a secret not set, a name that falls back to the id).
NO_DEFAULT = {
    "extends",
    "device",
    "id",
    "name",
    "source",
    "cameras",
    "image",
    "floor",
    "method",
    "password",
    "password_file",
    "jwt_secret",
    "jwt_secret_file",
    "host",
    "sender",
    "to",
    "url",
    "url_file",
    "authorization",
    "authorization_file",
    "secret_access_key",
    "secret_access_key_file",
}


def _objects(
    node: dict[str, Any], schema: dict[str, Any], path: str = ""
) -> typing.Iterator[tuple[str, dict[str, Any]]]:
    node = resolve(schema, node)
    if "properties" in node:
        yield path, node
        for key, child in node["properties"].items():
            yield from _objects(child, schema, f"{path}.{key}" if path else key)
    if isinstance(node.get("items"), dict):
        yield from _objects(node["items"], schema, f"{path}[]")


def test_every_key_has_a_description_and_a_default_where_one_makes_sense() -> None:
    schema = profile_schema()
    for path, node in _objects(schema, schema):
        for key, child in node["properties"].items():
            child = resolve(schema, child)
            assert child.get("description"), f"{path}.{key} has no description"
            if key not in NO_DEFAULT and key not in node.get("required", []):
                assert "default" in child, f"{path}.{key} has no default"


def _dataclass_of(annotation: Any) -> type | None:
    """The dataclass inside an annotation such as `tuple[CameraConfig, ...] | None`."""
    if dataclasses.is_dataclass(annotation):
        return annotation  # type: ignore[return-value]
    for argument in typing.get_args(annotation):
        found = _dataclass_of(argument)
        if found:
            return found
    return None


def test_typed_profile_fields_match_schema_properties() -> None:
    schema = profile_schema()

    def compare(cls: type, node: dict[str, Any], where: str) -> None:
        node = resolve(schema, node)
        if "items" in node and "properties" not in node:
            node = resolve(schema, node["items"])
        properties = set(node["properties"]) - {"extends"}
        hints = typing.get_type_hints(cls)
        assert set(hints) == properties, where
        for key in properties:
            nested = _dataclass_of(hints[key])
            if nested:
                compare(nested, node["properties"][key], f"{where}.{key}")

    compare(Profile, schema, "profile")
