"""The shipped systemd unit, checked by systemd's own tools (Debian's `systemd` package): it
parses, its commands exist, and its hardening rates "OK" in `systemd-analyze security`. Running
it under a live systemd needs a booted system, which the test machines are not; the runtime's
sd_notify protocol is tested over a real socket in test_runtime.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "appliance.service"
MAX_EXPOSURE = 3.0  # systemd-analyze security: 0 is fully locked down, 10 is unprotected
THRESHOLD = int(MAX_EXPOSURE * 10)  # --threshold counts in tenths


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit with /usr/bin/appliance pointed at this checkout's installed command."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    command = Path(sys.executable).parent / "appliance"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/usr/bin/appliance", str(command)))
    return copy


def test_unit_parses_and_its_commands_exist(unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert unit.name not in result.stderr, result.stderr


def test_unit_hardening_rates_ok(unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--threshold={THRESHOLD}", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Overall exposure level" in result.stdout
