"""The layers of pyproject.toml's import-linter contracts hold: no module imports one in a layer
above its own. A back-import added to a copy of the package breaks them, so CI would fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), str(config), "--no-cache"], capture_output=True,
                          text=True, cwd=root, timeout=120, env={"PYTHONPATH": str(root)})  # fmt: skip


def test_every_layer_imports_only_from_below() -> None:
    result = lint_imports(REPO, REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_back_import_breaks_the_layers(tmp_path: Path) -> None:
    """The configuration reads a runtime module, as `config/rules.py` once read the detector registry."""
    shutil.copytree(REPO / "appliance", tmp_path / "appliance", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    rules = tmp_path / "appliance" / "config" / "rules.py"
    rules.write_text(rules.read_text() + "\nfrom appliance.runtime.detectors import registry  # noqa\n")
    result = lint_imports(tmp_path, tmp_path / "pyproject.toml")
    assert result.returncode == 1 and "The appliance's layers BROKEN" in result.stdout, result.stdout
    assert "appliance.config.rules -> appliance.runtime.detectors" in result.stdout, result.stdout
