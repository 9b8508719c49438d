#!/usr/bin/env bash
# Set up and run every check: ruff, mypy and the whole pytest suite.
# Test data is found through APPLIANCE_TEST_DATA (default: ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
# Backends that run on a CPU, and the real stream servers the source tests start:
# ffmpeg (HTTP MJPEG listener), GStreamer's RTSP server under Debian's Python, and a
# real Prometheus for the metrics test; systemd-analyze checks the unit; podman, debootstrap
# (runc, where crun refuses hybrid cgroups) and Debian's nix build and check the appliance images.
scripts/setup.sh --dev --extra onnx --extra openvino --extra tflite \
  --deb ffmpeg --deb python3-gi --deb gir1.2-gst-rtsp-server-1.0 \
  --deb gstreamer1.0-plugins-base --deb gstreamer1.0-plugins-good --deb gstreamer1.0-libav \
  --deb prometheus --deb systemd --deb mosquitto --deb podman --deb runc --deb debootstrap --deb nix-bin
echo "== ruff"
.venv/bin/ruff check appliance evaluation tests bench
.venv/bin/ruff format --check appliance evaluation tests bench
echo "== mypy"
.venv/bin/mypy appliance
echo "== pytest"
before=$(git status --porcelain 2>/dev/null || true)
.venv/bin/pytest "$@"
after=$(git status --porcelain 2>/dev/null || true)
if [ "$before" != "$after" ]; then
  echo "the tests changed the checkout (a tool's cache or output belongs in a temporary folder):" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
