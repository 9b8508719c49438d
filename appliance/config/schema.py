"""The profile JSON Schema: validation with readable messages, defaults, secret keys."""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from appliance.config.errors import JsonPath, ProfileIssue
from appliance.config.merge import MergedProfile

Schema = dict[str, Any]
_SCHEMA_NAME = "profile.schema.json"
_JSON_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
    type(None): "null",
}


def schema_path() -> Path:
    """The schema file; in a source tree a link to schemas/profile.schema.json."""
    return Path(__file__).with_name(_SCHEMA_NAME)


@cache
def profile_schema() -> Schema:
    """The shipped schema (tests/test_cli.py checks it against the 2020-12 metaschema; checking
    it again at every load would cost each command about 0.14 s)."""
    schema: Schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


def resolve(schema: Schema, node: Schema) -> Schema:
    """`node` with a local `$ref` replaced by its target; sibling keywords win."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    merged = {**resolve(schema, target), **node}
    del merged["$ref"]
    return merged


def walk(schema: Schema, data: Any, visit: Callable[[JsonPath, Schema, Any], None]) -> None:
    """Call `visit(path, subschema, value)` for every value in `data` that the schema describes."""
    for path, node, value in _walk(schema, schema, data, ()):
        visit(path, node, value)


def _walk(root: Schema, node: Schema, value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, Schema, Any]]:
    node = resolve(root, node)
    yield path, node, value
    if isinstance(value, dict):
        for key, child in node.get("properties", {}).items():
            if key in value:
                yield from _walk(root, child, value[key], (*path, key))
    elif isinstance(value, list):
        prefix = node.get("prefixItems", [])
        for index, item in enumerate(value):
            child = prefix[index] if index < len(prefix) else node.get("items")
            if isinstance(child, dict):
                yield from _walk(root, child, item, (*path, index))


def fill_defaults(schema: Schema, data: dict[str, Any]) -> None:
    """Insert every missing key that has a default, depth first, in place."""

    def visit(_path: JsonPath, node: Schema, value: Any) -> None:
        if not isinstance(value, dict):
            return
        for key, child in node.get("properties", {}).items():
            child = resolve(schema, child)
            if key not in value and "default" in child:
                value[key] = copy.deepcopy(child["default"])

    walk(schema, data, visit)


def in_schema_order(schema: Schema, data: Any, node: Schema | None = None) -> Any:
    """A copy of `data` whose mapping keys follow the order the schema declares them in."""
    node = resolve(schema, node if node is not None else schema)
    if isinstance(data, dict):
        properties = node.get("properties", {})
        keys = [k for k in properties if k in data] + [k for k in data if k not in properties]
        return {k: in_schema_order(schema, data[k], properties.get(k, {})) for k in keys}
    if isinstance(data, list):
        prefix, items = node.get("prefixItems", []), node.get("items", {})
        return [in_schema_order(schema, item, prefix[i] if i < len(prefix) else items) for i, item in enumerate(data)]
    return data


def secret_paths(schema: Schema, data: dict[str, Any]) -> set[JsonPath]:
    """Paths of the values that the schema marks writeOnly (secrets)."""
    found: set[JsonPath] = set()

    def visit(path: JsonPath, node: Schema, _value: Any) -> None:
        if node.get("writeOnly"):
            found.add(path)

    walk(schema, data, visit)
    return found


def _ecma_pattern(validator: Any, pattern: str, instance: Any, _schema: Schema) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA-262): `$` is the end of the text, where Python's `$`
    also matches before a final newline ('cam\\n' would pass '^[a-z]+$')."""
    if validator.is_type(instance, "string") and not _python_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _python_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]


def validate(schema: Schema, merged: MergedProfile) -> list[ProfileIssue]:
    """Every schema violation in the merged profile, as issues at their file positions."""
    validator = _Validator(schema)
    issues: list[ProfileIssue] = []
    for error in validator.iter_errors(merged.data):
        issues.extend(_issues_for(error, merged))
    return issues


def _issues_for(error: ValidationError, merged: MergedProfile) -> Iterator[ProfileIssue]:
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = list(_schema_of(error).get("properties", {}))
        for key in error.instance:
            if key not in known:
                child = (*path, str(key))
                yield ProfileIssue(merged.location(child, key=True), child, _unknown_key_message(key, known))
        return
    if kind == "required":
        match = re.fullmatch(r"'(.+)' is a required property", error.message)
        missing = (*path, match.group(1)) if match else path
        yield ProfileIssue(merged.location(path), missing, "required key is missing")
        return
    yield ProfileIssue(merged.location(path), path, _message(error))


def _unknown_key_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key '{key}'; {hint}expected one of: {', '.join(known)}"


def _message(error: ValidationError) -> str:
    kind = error.validator
    expected: Any = error.validator_value
    value: Any = error.instance
    if kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return f"expected {' or '.join(names)}, got {_type_name(value)} {value!r}"
    if kind == "minItems":
        return f"expected at least {expected} items, got {len(value)}"
    if kind == "maxItems":
        return f"expected at most {expected} items, got {len(value)}"
    if kind == "minLength" and expected == 1:
        return "must not be empty"
    if kind == "pattern":
        description = _schema_of(error).get("description", "")
        detail = f" ({description.split(';')[0].rstrip('.')})" if description else ""
        return f"{value!r} does not match {expected!r}{detail}"
    return str(error.message)


def _schema_of(error: ValidationError) -> Schema:
    return dict(error.schema) if isinstance(error.schema, dict) else {}


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
