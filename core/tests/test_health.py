"""`/health/live` and `/health/ready` (API.md → Service; issue 15): each component, the required
ones failing with 503, the ones the run mode has not "disabled", and no check can hang the probe."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.tests.support import CACHE_DOWN
from core import health
from notifications.models import OutboxEvent

READY = "/health/ready"


def test_live_answers_while_the_process_runs(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_on_the_embedded_default_has_no_broker(client, settings):
    settings.CELERY_BROKER_URL = ""
    response = client.get(READY)
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok", "broker": "disabled", "events": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.slow  # a redis-server of its own unless REDIS_URL names one
@pytest.mark.django_db
def test_ready_with_a_working_celery_broker(client, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    response = client.get(READY)
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok", "broker": "ok", "events": "ok"}


@pytest.mark.django_db
def test_a_broker_that_is_down_is_503_naming_it(client, settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/0"
    response = client.get(READY)
    assert response.status_code == 503
    assert response.json() == {
        "database": "ok",
        "cache": "ok",
        "broker": "error",
        "events": "ok",
        "failing": ["broker"],
    }
    assert response["Retry-After"]


@pytest.mark.django_db
def test_a_hung_broker_cannot_hang_the_probe(client, settings, black_hole):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{black_hole}/0"
    settings.READY_CHECK_TIMEOUT_MS = 300
    started = time.monotonic()
    response = client.get(READY)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
    assert response.json()["broker"] in {"timeout", "error"}
    assert elapsed < 2.0


@pytest.mark.django_db
def test_a_check_still_running_at_the_deadline_answers_timeout(client, settings, monkeypatch):
    """Whatever hangs (a connect with no answer, a lock): the probe answers within the timeout."""
    settings.READY_CHECK_TIMEOUT_MS = 200
    release = threading.Event()

    def hangs() -> str:
        release.wait(10)
        return "ok"

    monkeypatch.setitem(health.CHECKS, "database", hangs)
    started = time.monotonic()
    try:
        response = client.get(READY)
    finally:
        release.set()
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.json()["database"] == "timeout"
    assert response.json()["failing"] == ["database"]


def _broken() -> str:
    raise ConnectionError("down")


@pytest.mark.django_db
def test_a_failed_database_is_503_naming_it(client, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "database", _broken)
    response = client.get(READY)
    assert response.status_code == 503
    assert response.json()["database"] == "error"
    assert response.json()["failing"] == ["database"]


@pytest.mark.django_db
def test_a_cache_outage_degrades_but_stays_ready(client):
    """Without Redis the service answers from the database (slower): not a reason to take it out."""
    with override_settings(CACHES=CACHE_DOWN):
        response = client.get(READY)
    assert response.status_code == 200
    assert response.json()["cache"] == "error"
    assert response.json()["degraded"] == ["cache"]
    assert response.json()["database"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_an_outbox_that_lags_makes_the_service_unready(client, settings):
    """The checks run in threads of their own: the rows are committed for them to see."""
    settings.READY_MAX_EVENT_LAG_SECONDS = 300
    settings.CELERY_BROKER_URL = ""
    event = OutboxEvent.objects.create(topic="t", key="thing_happened", payload={})

    OutboxEvent.objects.filter(id=event.id).update(created_at=timezone.now() - timedelta(seconds=200))
    assert client.get(READY).status_code == 200

    OutboxEvent.objects.filter(id=event.id).update(created_at=timezone.now() - timedelta(seconds=400))
    response = client.get(READY)
    assert response.status_code == 503
    assert response.json() == {
        "database": "ok",
        "cache": "ok",
        "broker": "disabled",
        "events": "lagging",
        "failing": ["events"],
    }

    # Published, however old: no lag.
    OutboxEvent.objects.filter(id=event.id).update(published_at=timezone.now())
    assert client.get(READY).json()["events"] == "ok"
