"""Secrets: resolved at load from the environment or files, masked in every output and log."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.api.routes.profile import masked_file
from appliance.config import load_profile
from appliance.config.secrets import MASK
from appliance.logs import configure_logging
from tests.conftest import WriteFiles, run_cli

PASSWORD = "s3cret-Pa55word"
PROFILE = """
device: {id: test}
detector:
  backend: onnxruntime
  model:
    path: ${env:APPLIANCE_TEST_MODELS}/yolox_nano.onnx
mqtt:
  username: ${file:mqtt_user}
  password: ${env:APPLIANCE_TEST_MQTT_PASSWORD}
api:
  auth:
    jwt_secret_file: secrets/jwt
"""
FILES = {"mqtt_user": "appliance-user\n", "secrets/jwt": "jwt-signing-key\n"}
ENV = {"APPLIANCE_TEST_MQTT_PASSWORD": PASSWORD, "APPLIANCE_TEST_MODELS": "/opt/models"}


@pytest.fixture
def secret_profile(write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = write_files(p__yaml=PROFILE)
    for name, content in FILES.items():
        target = path.resolve().parent / name
        target.parent.mkdir(exist_ok=True)
        target.write_text(content)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return path


def test_references_and_secret_files_are_resolved(secret_profile) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(secret_profile).profile
    assert profile.mqtt.password == PASSWORD
    assert profile.mqtt.username == "appliance-user"
    assert profile.api.auth.jwt_secret == "jwt-signing-key"
    assert profile.detector.model.path == "/opt/models/yolox_nano.onnx"


def test_masked_data_hides_secrets_but_not_plain_references(secret_profile) -> None:  # type: ignore[no-untyped-def]
    data = load_profile(secret_profile).masked_data()
    assert data["mqtt"]["password"] == MASK
    assert data["mqtt"]["username"] == MASK  # read from a file: treated as secret
    assert data["api"]["auth"]["jwt_secret"] == MASK
    assert data["api"]["auth"]["jwt_secret_file"].endswith("/secrets/jwt")
    assert data["detector"]["model"]["path"] == "/opt/models/yolox_nano.onnx"


@pytest.mark.parametrize("output_format", ["yaml", "json"])
def test_show_never_prints_a_secret(secret_profile, output_format: str) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        "--log-level",
        "debug",
        "show",
        "-f",
        output_format,
        "p.yaml",
        env=ENV,
        cwd=secret_profile.resolve().parent,
    )
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    for secret in (PASSWORD, "appliance-user", "jwt-signing-key"):
        assert secret not in everything
    assert MASK in result.stdout
    if output_format == "json":
        assert json.loads(result.stdout)["mqtt"]["password"] == MASK


def test_logs_never_carry_a_loaded_secret(secret_profile) -> None:  # type: ignore[no-untyped-def]
    configure_logging("info", secrets=load_profile(secret_profile).secret_values)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("appliance.test.secrets")
    logger.addHandler(handler)
    try:
        logger.warning("broker refused user %s with password %s", "appliance-user", PASSWORD)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == f"broker refused user {MASK} with password {MASK}\n"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_name_cannot_forge_or_disguise_a_log_line(log_format: str) -> None:
    """A line break, a carriage return, a line separator or a right-to-left override in a value
    (a bundle's or a camera's name) is written escaped, on the record's one line."""
    program = ("import logging, sys; from appliance.logs import configure_logging; "
               f"configure_logging('info', {log_format!r}); "
               "logging.getLogger('appliance.test').warning('took %s', sys.argv[1])")  # fmt: skip
    name = "a\n2026-12-05 INFO appliance: installed\r\u2028\u202eexe.txt"
    result = subprocess.run([sys.executable, "-c", program, name], capture_output=True, text=True, timeout=60)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not any(character in result.stderr for character in "\r\u2028\u202e"), result.stderr
    assert "\\n2026-12-05 INFO" in result.stderr and "\\u202e" in result.stderr, result.stderr


def test_a_literal_secret_is_masked_too(write_files: WriteFiles) -> None:
    path = write_files(p__yaml="device: {id: test}\nmqtt:\n  password: written-in-clear\n")
    assert load_profile(path).masked_data()["mqtt"]["password"] == MASK


MASKED_FORMS = """\
device: {id: t}
api:
  auth:
    jwt_secret: "${env:JWT_FOR_TEST}"   # a reference: the profile never holds the key
mqtt:
  enabled: false
  password: 'it''s-the-pass-4711'   # a doubled quote
cameras:
  - id: door
    source: "rtsp://admin:p%40ss-4711@10.0.0.5:554/live?%74oken=tok%2Den-4711&channel=1"
"""


def test_secrets_are_masked_by_their_place_whatever_their_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file as the API serves it (GET /profile/yaml) and the resolved data (GET /profile,
    /cameras): no secret in any spelling, decoded or as written."""
    monkeypatch.setenv("JWT_FOR_TEST", "jwt-1secret-value-abcdefghijklmnopqrstuvwxyz012345")
    path = tmp_path / "p.yaml"
    path.write_text(MASKED_FORMS)
    loaded = load_profile(path)
    text, data = masked_file(loaded), json.dumps(loaded.masked_data())
    for shown in (text, data):
        for secret in ("jwt-1secret", "it's-the-pass", "it''s-the-pass", "p%40ss", "p@ss",
                       "tok%2Den", "tok-en"):  # fmt: skip
            assert secret not in shown, (secret, shown)
    assert "# a reference" in text and "channel=1" in text and "rtsp://admin:********@10.0.0.5" in text


KEY_SPELLINGS = ['"jwt-\\x31secret-value-4711"', "'jwt-''secret-value-4711'", "jwt-secret-value-4711",
                 "!!str jwt-secret-value-4711"]  # fmt: skip


@pytest.mark.parametrize("written", KEY_SPELLINGS)
def test_a_signing_key_written_in_the_profile_is_refused_without_showing_it(tmp_path: Path, written: str) -> None:
    """A viewer reads the profile; a key in it (in any spelling) is refused where it is, not masked."""
    path = tmp_path / "p.yaml"
    path.write_text(f"device: {{id: t}}\napi:\n  auth:\n    jwt_secret: {written}\n")
    outcome = run_cli("validate", str(path))
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == 2 and f"{path}:4" in output and "jwt_secret_file" in output, output
    assert "secret-value" not in output, output
