"""What a person running the appliance sees: a status line per camera every
`runtime.status_interval_s` (also sent to systemd as STATUS), and a progress bar in historical
mode."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tqdm import tqdm

from appliance.runtime.events import RunSummary
from appliance.runtime.state import CameraState, RuntimeState

log = logging.getLogger(__name__)


def camera_line(camera: CameraState) -> str:
    return (
        f"{camera.camera_id}: {camera.status}, {camera.fps:.1f} fps, {camera.people} people, "
        f"{camera.people_in_violation} in violation"
    )


class Console:
    def __init__(self, state: RuntimeState, input_file: Path | None) -> None:
        self.state = state
        self.input_file = input_file
        self._last_status = 0.0
        self._progress: tqdm | None = None  # type: ignore[type-arg]

    def status(self, interval_s: float) -> str | None:
        """Every `interval_s`: log each camera's status and return it; None in between."""
        now = time.monotonic()
        if now - self._last_status < interval_s:
            return None
        self._last_status = now
        line = "; ".join(camera_line(c) for c in self.state.snapshot().cameras.values())
        log.info("%s", line)
        return line

    def show_progress(self) -> None:
        """Historical mode: advance the progress bar to the first camera's position."""
        camera = next(iter(self.state.snapshot().cameras.values()), None)
        if self.input_file is None or camera is None or camera.progress is None:
            return
        done, total = camera.progress
        if self._progress is None:
            self._progress = tqdm(total=total or None, unit="frame", desc=f"{self.input_file}", leave=True)
        self._progress.update(done - self._progress.n)

    def summary(self, run_id: str, summary: RunSummary) -> None:
        """What the run did, at its end: per camera and per area, and where the events are."""
        lines = [f"run {run_id} ended"]
        for camera in summary.cameras:
            fps = (camera.frames - 1) / camera.seconds if camera.seconds > 0 else 0.0
            lines.append(
                f"  camera {camera.camera_id}: {camera.frames} frames in {camera.seconds:.1f} s ({fps:.1f} fps); "
                f"people: peak {camera.peak_people}, mean {camera.mean_people:.1f}; in violation: peak "
                f"{camera.peak_in_violation}, mean {camera.mean_in_violation:.1f}; "
                f"{camera.episodes} violation episode(s)"
            )
        lines += [f"  area {area}: {count} alert(s)" for area, count in summary.alerts.items()]
        lines.append(f"  events: {summary.events_folder}")
        for line in lines:
            log.info("%s", line)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()
