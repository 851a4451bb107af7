"""Liveness and readiness for load balancers and orchestrators.

`/health/ready` answers `{database, cache, broker, events}`, each "ok",
"disabled" (the run mode has none: no Celery broker on the embedded
default), "error", "timeout" or, for events, "lagging" (the oldest pending
outbox event is older than `READY_MAX_EVENT_LAG_SECONDS`). 503 names the
required components that failed in `failing`; a cache outage slows the
service down without taking it out (`degraded`, still 200).

Each check runs in a thread of its own and is waited for at most
`READY_CHECK_TIMEOUT_MS`: a dependency that hangs (a dropped packet, a full
accept queue) answers "timeout" instead of hanging the probe.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

OK, DISABLED, ERROR, TIMEOUT, LAGGING = "ok", "disabled", "error", "timeout", "lagging"


class Lagging(Exception):
    pass


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _timeout_seconds() -> float:
    return settings.READY_CHECK_TIMEOUT_MS / 1000


def _database() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # This thread's connection is closed after the check: the setting dies with it.
            cursor.execute("SET statement_timeout = %s", [settings.READY_CHECK_TIMEOUT_MS])
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return OK


def _cache() -> str:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, 1, 5)
    if cache.get(key) != 1:
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)
    return OK


def _broker() -> str:
    """The Celery broker: requests queue tasks after commit, so it is required when configured."""
    if not settings.CELERY_BROKER_URL:
        return DISABLED
    from kombu import Connection

    timeout = _timeout_seconds()
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0)
    return OK


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "cache": _cache,
    "broker": _broker,
}
# Without the cache the service still answers every request (from the database, slower).
REQUIRED = {"database", "broker"}


def readiness_check_register(name: str, check: Callable[[], str], *, required: bool = True) -> None:
    """An app's own readiness check (notifications: `events`, the outbox keeping up), registered
    once from its `AppConfig.ready()`: this module imports no app. `check` returns OK or
    DISABLED, raises `Lagging` or anything else to say why not."""
    CHECKS[name] = check
    if required:
        REQUIRED.add(name)


def _run(name: str, check: Callable[[], str], box: dict[str, Any]) -> None:
    try:
        box["result"] = check()
    except Lagging as exc:
        box["result"], box["why"] = LAGGING, str(exc)
    except Exception as exc:  # any failure means "not ready", whatever its kind
        box["result"], box["why"] = ERROR, f"{type(exc).__name__}: {exc}"
    finally:
        connections.close_all()  # this thread's own connections, not the request's


def run_checks() -> dict[str, str]:
    """Every check at once, each in its own thread; one that is still running at the deadline is "timeout"."""
    started: list[tuple[str, threading.Thread, dict[str, Any]]] = []
    for name, check in CHECKS.items():
        box: dict[str, Any] = {}
        thread = threading.Thread(target=_run, args=(name, check, box), name=f"ready-{name}", daemon=True)
        thread.start()
        started.append((name, thread, box))
    deadline = time.monotonic() + _timeout_seconds()
    results: dict[str, str] = {}
    for name, thread, box in started:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            results[name] = TIMEOUT
            logger.warning(
                "readiness check %s did not answer within %d ms", name, settings.READY_CHECK_TIMEOUT_MS
            )
            continue
        results[name] = box.get("result", ERROR)
        if "why" in box:
            logger.warning("readiness check %s: %s", name, box["why"])
    return results


def ready(request: HttpRequest) -> JsonResponse:
    """200 with each dependency "ok" or "disabled"; 503 naming the required ones that failed."""
    results = run_checks()
    failing = [name for name, result in results.items() if result not in (OK, DISABLED)]
    if any(name in REQUIRED for name in failing):
        response = JsonResponse({**results, "failing": failing}, status=503)
        response["Retry-After"] = "5"
        response["Cache-Control"] = "no-store"
        return response
    response = JsonResponse({**results, "degraded": failing} if failing else results)
    response["Cache-Control"] = "no-store"
    return response
