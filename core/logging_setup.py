"""The `LOGGING` dict: plain or JSON lines, to stdout and to a daily-rotated file in `LOG_DIR`.

Every line carries the request id (`core.logging_context`). The file is
rotated at midnight by concurrent-log-handler, which takes a file lock to
rotate: gunicorn workers, the Celery worker and the consumer may all write
to one `LOG_DIR`, and the stdlib's TimedRotatingFileHandler would have each
process rename the file under the others.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LOG_FILE_NAME = "user_service.log"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Libraries that would write secrets or personal data at DEBUG (SQL parameters,
# request URLs with provider tokens, Kafka message values): never below INFO.
_QUIET = {
    "django.db.backends": "INFO",
    "urllib3": "INFO",
    "requests_oauthlib": "INFO",
    "oauthlib": "INFO",
    "social": "INFO",
    "kafka": "WARNING",
    "asyncio": "WARNING",
    "celery.utils.functional": "INFO",  # prints every task's signature at DEBUG
    "django.utils.autoreload": "INFO",
}


class ServiceJsonFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, request_id, and any `extra=` fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        # Django attaches the request object to its records: not a field to print.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request", "server_time"])
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO 8601 in UTC, as the API's timestamps and gunicorn's JSON access lines.
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


def _at_least(floor: str, level: str) -> str:
    return floor if logging.getLevelName(floor) > logging.getLevelName(level) else level


def build_logging(*, log_dir: Path, level: str, log_format: str) -> dict[str, Any]:
    formatter = "json" if log_format == "json" else "plain"
    filters = ["request_id", "redact"]
    handlers: dict[str, dict[str, Any]] = {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": formatter,
            "filters": filters,
        },
    }
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        probe = log_dir / LOG_FILE_NAME
        probe.touch(exist_ok=True)
        handlers["file"] = {
            "class": "concurrent_log_handler.ConcurrentTimedRotatingFileHandler",
            "filename": str(probe),
            "when": "midnight",
            "backupCount": 14,
            "formatter": formatter,
            "filters": filters,
            "encoding": "utf-8",
        }
    except OSError:
        pass  # an unwritable LOG_DIR leaves stdout logging only
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "core.logging_context.RequestIdFilter"},
            "redact": {"()": "core.logging_context.RedactSecretsFilter"},
        },
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {"()": "core.logging_setup.ServiceJsonFormatter"},
        },
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            **{name: {"level": _at_least(quiet, level)} for name, quiet in _QUIET.items()},
        },
    }
