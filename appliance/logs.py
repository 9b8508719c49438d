"""Logging for every process the appliance runs (the CLI, the supervisor, camera workers, the
detector service): text or one JSON object per line, secrets masked in every record, and each
message on one line, its control and bidirectional characters escaped.

Masking happens when a record is made, so no handler (a progress bar's, a library's) can see a
secret, and again on exception and stack text, which is formatted later."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

from appliance.config.secrets import REDACTOR
from appliance.text import escaped

LogFormat = Literal["text", "json"]
_base_factory = logging.getLogRecordFactory()
QUIET_LIBRARIES = ("watchdog",)  # at DEBUG it logs every file event, so a log file it can see feeds itself


def configure_logging(
    level: str, log_format: LogFormat = "text", *, process: str | None = None, secrets: Iterable[str] = ()
) -> None:
    """Log to stderr at `level` in this process; `process` names it on every line (a camera id,
    'detector'); `secrets` are masked wherever they appear."""
    REDACTOR.register(secrets)
    logging.setLogRecordFactory(_safe_record)
    handler = logging.StreamHandler()
    handler.setFormatter(_json_formatter(process) if log_format == "json" else _TextFormatter(process))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(max(logging.INFO, logging.getLogger().level))


def _safe_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """The record with its message on one line (names with line breaks or bidirectional characters
    cannot forge or disguise a line) and with every secret masked."""
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a call whose arguments do not fit its format: logging reports it when it emits
        return record
    record.msg, record.args = escaped(REDACTOR.redact(message) if REDACTOR.active else message), None
    return record


class _TextFormatter(logging.Formatter):
    def __init__(self, process: str | None) -> None:
        label = f"[{process}] " if process else ""
        super().__init__(f"%(asctime)s %(levelname)s {label}%(name)s: %(message)s")

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return REDACTOR.redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return REDACTOR.redact(super().formatStack(stack_info))


class _RedactingJsonFormatter(JsonFormatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return REDACTOR.redact(str(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return REDACTOR.redact(str(super().formatStack(stack_info)))


def _json_formatter(process: str | None) -> logging.Formatter:
    """{"time", "level", "logger", "process", "message"} per line, for log collectors."""
    return _RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"process": process or "main"},
        timestamp=False,
    )
