"""A new detector tried before it is installed: loaded with its backend in a child process (a
model that crashes or hangs takes only the child with it) and run on a real frame, the first
frame of the first camera that reads a file; live cameras are busy with their workers, so a
profile with only those is tried on a blank frame.

    python -m appliance.ota.probe < {"profile": PATH, "text": YAML}"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from appliance.config import LoadedProfile, load_profile

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 300.0
BLANK_SIZE = (640, 480)


def probe_detector(profile_path: Path, text: str, loaded: LoadedProfile) -> str | None:
    """Why the detector of `text` cannot load or run, or None when it ran on a frame."""
    request = json.dumps({"profile": str(profile_path), "text": text})
    try:
        child = subprocess.run([sys.executable, "-m", "appliance.ota.probe"], input=request, capture_output=True,
                               text=True, timeout=PROBE_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"the detector did not load and run a frame within {PROBE_TIMEOUT_S:.0f} s"
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        last = lines[-1][:300] if lines else f"exit status {child.returncode}"
        return f"the {loaded.profile.detector.backend} detector failed on a frame: {last}"
    log.info("ota: the new detector ran on a frame: %s", child.stdout.strip())
    return None


def _frame(loaded: LoadedProfile) -> tuple[np.ndarray, str]:
    for camera in loaded.profile.cameras:
        source = str(camera.source)
        if isinstance(camera.source, str) and "://" not in source and not source.startswith("/dev/"):
            capture = cv2.VideoCapture(source)
            ok, frame = capture.read()
            capture.release()
            if ok:
                return frame, f"camera {camera.id}"
    return np.zeros((BLANK_SIZE[1], BLANK_SIZE[0], 3), np.uint8), "a blank frame (no camera reads a file)"


def main() -> int:
    from appliance.runtime.detectors import create_detector
    from appliance.runtime.tracking import detector_config_for

    request = json.loads(sys.stdin.read(4 * 1024 * 1024))
    loaded = load_profile(Path(request["profile"]), request["text"])
    try:
        detector = create_detector(detector_config_for(loaded.profile))
        frame, where = _frame(loaded)
        started = time.perf_counter()
        detections = detector.detect(frame)
        elapsed_ms = (time.perf_counter() - started) * 1000
        detector.close()
    except Exception as error:  # any failure of a foreign model is the answer, not a crash
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"frame": where, "detections": len(detections), "ms": round(elapsed_ms, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
