#!/usr/bin/env bash
# Set up and run every check: ruff, mypy and the whole pytest suite.
# Test data is found through APPLIANCE_TEST_DATA (default: ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
echo "== ruff"
.venv/bin/ruff check appliance tests
.venv/bin/ruff format --check appliance tests
echo "== mypy"
.venv/bin/mypy appliance
echo "== pytest"
.venv/bin/pytest "$@"
