#!/usr/bin/env bash
# Set up and run the appliance with the default profile (profiles/x86.yaml: OpenVINO with the
# shipped person-detection-retail-0013, no download) on the PETS 2009 sample video, printing
# per-camera FPS, people and violations. Metrics: http://127.0.0.1:9110/metrics while it runs; events: var/data/events/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p var/media
video=var/media/vtest.avi
if [ ! -s "$video" ]; then
  kit="${APPLIANCE_TEST_DATA:-../shared/data}/sequences/PETS09-S2L1/vtest.avi"
  member=./usr/share/doc/opencv-doc/examples/data/vtest.avi
  if [ -s "$kit" ]; then
    cp "$kit" "$video"
  elif [ -s "${member#.}" ]; then
    cp "${member#.}" "$video"
  else
    # Only the video, out of Debian's opencv-doc package: downloaded, unpacked, nothing installed.
    echo "run: fetching the sample video (vtest.avi, from Debian's opencv-doc package; nothing is installed)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    download=$(mktemp -d) && chmod 755 "$download"   # apt downloads as its own user, _apt
    (cd "$download" && apt-get download -qq opencv-doc >/dev/null)
    dpkg-deb --fsys-tarfile "$download"/opencv-doc_*.deb | tar -xO "$member" > "$video.partial"
    rm -rf "$download"
    mv "$video.partial" "$video"
  fi
fi
cat > var/demo.yaml <<YAML
# The default profile, writing under var/ instead of /var/lib/appliance.
extends: ../profiles/x86.yaml
cameras:
  - id: lobby
    name: Lobby
    source: media/vtest.avi
areas:
  - id: ground-floor
    name: Ground floor
    cameras: [lobby]
    occupancy_threshold: 20
storage:
  data_dir: data
metrics:
  listen: 127.0.0.1:9110
mqtt:
  enabled: false
api:
  enabled: false
ota:
  enabled: false
YAML
exec .venv/bin/appliance run --profile var/demo.yaml --input "$video"
