#!/usr/bin/env bash
# Set up this checkout on a fresh Debian/Ubuntu machine: the Debian packages it needs and
# .venv with the dependencies pinned (with hashes) in uv.lock.
#
#   scripts/setup.sh [--dev] [--extra NAME]... [--deb PACKAGE]...
#
#   --dev          also install the test tools (pytest, ruff, mypy)
#   --extra NAME   also install a detector backend extra: onnx, openvino, tflite, edgetpu,
#                  tensorrt, ultralytics
#   --deb PACKAGE  also install this Debian package (used by the test setup)
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
sync_args=(--locked --inexact --no-dev --compile-bytecode)   # bytecode now, not at every cold start
debs=(python3 python3-venv)
while (($#)); do
  case "$1" in
    --dev) sync_args=(--locked --inexact --compile-bytecode) ;;
    --extra) sync_args+=(--extra "$2"); shift ;;
    --deb) debs+=("$2"); shift ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

missing=()
for deb in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
done
if ((${#missing[@]})) && command -v apt-get >/dev/null; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "setup: installing uv $UV_VERSION into .tools/"
  python3 -m venv .tools
  .tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

echo "setup: syncing .venv with uv.lock (${sync_args[*]})"
.tools/bin/uv sync --quiet "${sync_args[@]}"
