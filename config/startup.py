"""What a server process does once when it starts."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from accounts.services import ensure_admin

from .after_commit import registered_task, tasks_run_in_process

logger = logging.getLogger(__name__)


def on_server_start() -> None:
    """Create the first admin when there is none; in the embedded default, run the periodic work."""
    try:
        ensure_admin()
    except DatabaseError as exc:
        logger.error("Admin account not checked (has `manage.py migrate` run?): %s", exc)
    if tasks_run_in_process():
        threading.Thread(target=_run_periodic_forever, name="periodic", daemon=True).start()


def _run_periodic_forever() -> None:
    """Celery beat's schedule, in-process, for the single-process embedded default."""
    next_run = {
        name: time.monotonic() + min(60.0, float(entry["schedule"]))  # type: ignore[arg-type]
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    while True:
        time.sleep(5)
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            if time.monotonic() < next_run[name]:
                continue
            next_run[name] = time.monotonic() + float(entry["schedule"])  # type: ignore[arg-type]
            try:
                registered_task(str(entry["task"])).apply()
            except Exception:
                logger.exception("periodic task %s failed", name)
            finally:
                close_old_connections()
