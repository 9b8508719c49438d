#!/usr/bin/env bash
# The OCI images' Python requirements, with hashes, from uv.lock (and the build backend from
# oci/requirements/build.in). Run after every change of uv.lock; tests/test_image.py checks
# that they are in sync.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.tools/bin/uv}
out=oci/requirements
"$uv" export --quiet --frozen --no-dev --no-emit-project --format requirements-txt -o "$out/default.txt"
for extra in edgetpu tensorrt; do
    "$uv" export --quiet --frozen --no-dev --no-emit-project --format requirements-txt --extra "$extra" -o "$out/$extra.txt"
done
"$uv" pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux "$out/build.in" -o "$out/build.txt"
