"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, 1, 5)
    if cache.get(key) != 1:
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


CHECKS = {"database": _database, "cache": _cache}
# Without the cache the service still answers every request (from the database,
# slower), so a cache outage reports "error" but does not take instances out.
REQUIRED = {"database"}


def ready(request: HttpRequest) -> JsonResponse:
    """200 with each dependency "ok"; 503 naming the required ones that failed."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready", whatever its kind
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = "error"
    failing = [name for name, result in results.items() if result != "ok"]
    if any(name in REQUIRED for name in failing):
        return JsonResponse({**results, "failing": failing}, status=503)
    if failing:
        return JsonResponse({**results, "degraded": failing})
    return JsonResponse(results)
