"""The composition root: the one place that chooses the parts of a running appliance and puts
them together. Every layer below it (the API, OTA, the runtime and its outputs) is built here and
imports nothing above itself (the layers are checked by import-linter, pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from appliance.api.server import ApiServer
from appliance.config import load_profile
from appliance.ota.updater import OtaUpdater, take_state_dir
from appliance.runtime.app import Runtime, RuntimeServices
from appliance.runtime.outputs.base import Output
from appliance.runtime.outputs.eventlog import EventLog
from appliance.runtime.outputs.metrics import Metrics
from appliance.runtime.outputs.mqtt import MqttOutput
from appliance.runtime.outputs.notifications.output import NotificationsOutput
from appliance.runtime.outputs.s3.output import S3Output


def build_runtime(
    profile_path: Path,
    *,
    input_file: Path | None = None,
    input_start: float | None = None,
    log_level: str | None = None,
    extra_outputs: Sequence[Output] = (),
) -> Runtime:
    """The runtime for `profile_path` with every output; raises ProfileError when it cannot start.
    A live runtime first finishes or undoes an update that was interrupted (OTA's state folder)."""
    ota_lock = None
    if input_file is None:
        ota_lock, _restored = take_state_dir(profile_path, load_profile(profile_path))

    def outputs(services: RuntimeServices) -> list[Output]:
        built: list[Output] = [
            Metrics(services.loaded, services.state),
            EventLog.for_profile(services.loaded),
            MqttOutput(services.loaded, services.state, services.dispatcher),
            ApiServer(services.loaded, services.state, services.dispatcher),
            NotificationsOutput(services.loaded, services.dispatcher, historical=services.historical),
            S3Output(services.loaded, services.dispatcher),
        ]
        if not services.historical:
            built.append(OtaUpdater(profile_path, services.loaded, services.state, services.dispatcher, services.post,
                                    ota_lock))  # fmt: skip
        return [*built, *extra_outputs]

    return Runtime(profile_path, input_file=input_file, input_start=input_start, log_level=log_level, outputs=outputs)
