"""The `appliance` command as a user runs it: help everywhere, show, schema, exit codes."""

from __future__ import annotations

import argparse
import json

import pytest
from jsonschema import Draft202012Validator

from appliance.cli import _parser
from appliance.config.schema import schema_path
from tests.conftest import REPO, WriteFiles, run_cli

COMMANDS = [[], ["validate"], ["show"], ["run"], ["schema"], ["models"], ["models", "list"], ["models", "fetch"],
            ["users"], ["users", "add"], ["certs"], ["ota"], ["ota", "pack"], ["ota", "verify"], ["ota", "status"],
            ["build"]]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: appliance")


def test_every_argument_of_every_command_has_a_help_text() -> None:
    missing, parsers = [], [("appliance", _parser())]
    while parsers:
        name, parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += [(f"{name} {sub}", subparser) for sub, subparser in action.choices.items()]
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction) and not action.help:
                missing.append(f"{name}: {action.dest}")
    assert not missing


@pytest.mark.parametrize("how", [["profiles/x86.yaml"], ["--profile", "profiles/x86.yaml"]])
@pytest.mark.parametrize("command", [["validate"], ["show"], ["ota", "status"]])
def test_a_profile_is_taken_positionally_or_with_profile(command: list[str], how: list[str]) -> None:
    result = run_cli(*command, *how)
    assert result.returncode == 0, result.stderr


def test_run_without_a_profile_says_both_ways() -> None:
    result = run_cli("run")
    assert result.returncode == 2 and "give PROFILE or --profile PROFILE" in result.stderr


def test_adding_a_user_without_a_terminal_names_password_stdin(write_files: WriteFiles) -> None:
    profile = write_files(**{"p.yaml": "device: {id: t}\nstorage: {data_dir: data}\n"})
    result = run_cli("users", "--profile", str(profile.resolve()), "add", "bob", "--role", "admin")
    assert result.returncode == 2 and "--password-stdin" in result.stderr and "Traceback" not in result.stderr


def test_no_command_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "required: COMMAND" in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("appliance ")


def test_schema_prints_the_shipped_schema() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema == json.loads((REPO / "schemas" / "profile.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema_path().resolve() == (REPO / "schemas" / "profile.schema.json").resolve()


def test_show_fills_in_defaults_and_follows_extends() -> None:
    result = run_cli("show", "--format", "json", "profiles/coral.yaml")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "extends" not in data
    assert data["device"]["id"] == "coral"
    assert data["mqtt"]["host"] == "localhost"  # from base.yaml
    assert data["tracker"]["max_lost_s"] == 2  # a schema default
    assert data["cameras"][0]["enabled"] is True  # a default inside a list item
    assert data["cameras"][1]["distance"]["method"] == "four_corners"


def test_show_yaml_lists_sections_in_schema_order() -> None:
    result = run_cli("show", "profiles/x86.yaml")
    assert result.returncode == 0, result.stderr
    top_keys = [line.split(":")[0] for line in result.stdout.splitlines() if line[:1].isalpha()]
    assert top_keys == [
        "schema_version",
        "device",
        "detector",
        "tracker",
        "motion",
        "cameras",
        "areas",
        "distancing",
        "anonymizer",
        "masks",
        "mqtt",
        "metrics",
        "api",
        "notifications",
        "s3",
        "storage",
        "ota",
        "logging",
        "runtime",
    ]


def test_show_of_an_invalid_profile_exits_2(write_files: WriteFiles) -> None:
    path = write_files(p__yaml="device: {id: test}\ncameras: {}\n")
    result = run_cli("show", str(path.resolve()))
    assert result.returncode == 2
    assert "cameras: expected array, got mapping {}" in result.stderr


def test_validate_missing_file(write_files: WriteFiles) -> None:
    write_files(p__yaml="device: {id: test}\n")
    result = run_cli("validate", "absent.yaml", cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.startswith("absent.yaml: cannot read the profile: it does not exist")
