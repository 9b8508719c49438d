"""The shipped systemd units, checked by systemd's own tools (Debian's `systemd` package): they
parse with nothing said on stderr, their commands exist, and the services' hardening rates an
exposure of 2.0 or less in `systemd-analyze security`. Running
it under a live systemd needs a booted system, which the test machines are not; the runtime's
sd_notify protocol is tested over a real socket in test_runtime.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UNITS = ("appliance.service", "appliance-ota.service", "appliance-ota.path")
SERVICES = [name for name in UNITS if name.endswith(".service")]
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 is fully locked down, 10 is unprotected
THRESHOLD = int(MAX_EXPOSURE * 10)  # --threshold counts in tenths


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units, /usr/bin/appliance pointed at this checkout's installed command."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    command = Path(sys.executable).parent / "appliance"
    for name in UNITS:
        (tmp_path / name).write_text((REPO / "systemd" / name).read_text().replace("/usr/bin/appliance", str(command)))
    return tmp_path


def test_units_parse_with_nothing_on_stderr(units: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(units / name) for name in UNITS)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_service_hardening_exposure_is_at_most_2(units: Path, service: str) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--threshold={THRESHOLD}", str(units / service)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Overall exposure level" in result.stdout
