"""What a server process does once when it starts."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from accounts.services import admin_ensure
from core.after_commit import registered_task, tasks_run_in_process

logger = logging.getLogger(__name__)


def on_server_start() -> None:
    """Create the first admin when there is none; in the embedded default, run the periodic work."""
    try:
        admin_ensure()
    except DatabaseError as exc:
        logger.error("Admin account not checked (has `manage.py migrate` run?): %s", exc)
    if tasks_run_in_process():
        tasks = scheduled_tasks()  # here, so a bad schedule shows at start, not at its first run
        threading.Thread(target=_run_periodic_forever, args=(tasks,), name="periodic", daemon=True).start()


def scheduled_tasks() -> dict[str, Any]:
    """Beat's schedule, each entry resolved to its registered task.

    A web process imports a task module only when something queues one of its
    tasks, so the purges (queued by nothing but the schedule) were missing at
    their first run (`NotRegistered`); `registered_task` loads every app's
    tasks module on a miss, as a worker does at start. Raises `KeyError`
    (Celery's `NotRegistered`) naming a task that does not exist.
    """
    resolved = {}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        try:
            resolved[name] = registered_task(str(entry["task"]))
        except KeyError:
            raise KeyError(
                f"beat schedule {name!r} names {entry['task']!r}, which is no registered task"
            ) from None
    return resolved


def _run_periodic_forever(tasks: dict[str, Any]) -> None:
    """Celery beat's schedule, in-process, for the single-process embedded default."""
    schedule = settings.CELERY_BEAT_SCHEDULE
    next_run = {
        name: time.monotonic() + min(60.0, float(schedule[name]["schedule"]))  # type: ignore[arg-type]
        for name in tasks
    }
    while True:
        time.sleep(5)
        for name, task in tasks.items():
            if time.monotonic() < next_run[name]:
                continue
            next_run[name] = time.monotonic() + float(schedule[name]["schedule"])  # type: ignore[arg-type]
            try:
                task.apply()
            except Exception:
                logger.exception("periodic task %s failed", name)
            finally:
                close_old_connections()
