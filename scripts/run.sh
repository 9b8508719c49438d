#!/usr/bin/env bash
# Set up and run the appliance's main job with the default profile.
# Until the runtime exists this validates every shipped profile and shows the default one
# fully resolved.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/appliance validate profiles/*.yaml
.venv/bin/appliance show profiles/x86.yaml
